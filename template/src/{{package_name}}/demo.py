"""The demo: a simulated run of the nurture sequence on sample leads.

Time is simulated: the leads opt in an hour after the send window opens on a
day in the past, then the scheduled tick runs every hour until every step has
had its chance. The run is the same whenever the demo is started. The tick
only starts a flow run when it has something to do, as a real hourly schedule
would find nothing to do most hours. On the way, one lead unsubscribes and
one buys, so the summary shows both ways out of the sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from .flows.nurture import FLOW, advance, enroll, plan_tick
from .leads import NewLead
from .runtime import Runtime

TICK = timedelta(hours=1)
OPT_IN_AFTER_WINDOW_OPENS = timedelta(hours=1)
UNSUBSCRIBE_AFTER = timedelta(hours=30)
PURCHASE_AFTER = timedelta(hours=54)


async def run_demo(
    leads: Sequence[NewLead], *, days: int | None, echo: Callable[[str], None]
) -> str:
    """Run the simulation and return a summary to print.

    Args:
        leads: The sample leads.
        days: How many days to simulate; the sequence's length plus two when
            not given.
        echo: Where progress lines go.
    """
    runtime = Runtime.open()
    steps = runtime.campaign.nurture.steps
    span = timedelta(days=days if days is not None else steps[-1].day + 2)
    campaign = runtime.campaign
    first_day = datetime.now(campaign.zone).date() - span - timedelta(days=1)
    opens = datetime.combine(first_day, campaign.window.start, campaign.zone)
    start = (opens + OPT_IN_AFTER_WINDOW_OPENS).astimezone(UTC)
    end = start + span
    echo(
        f"Simulating {span.days} days of the nurture sequence for {len(leads)} "
        f"sample leads, from {start:%Y-%m-%d %H:%M} UTC."
    )
    try:
        await enroll(list(leads), source="demo", now=start)
        leaver = leads[-1].email if len(leads) > 2 else None
        buyer = leads[-2].email if len(leads) > 2 else None
        tick = start + TICK
        while tick <= end:
            if leaver and tick == start + UNSUBSCRIBE_AFTER:
                runtime.store.suppress(
                    leaver, reason="unsubscribed", source="demo", at=tick
                )
                echo(f"{tick:%a %H:%M}: a lead clicked the unsubscribe link.")
            if buyer and tick == start + PURCHASE_AFTER:
                runtime.store.record_purchase(buyer, at=tick)
                echo(f"{tick:%a %H:%M}: a lead bought the offer.")
            plan = plan_tick(
                runtime.store.active_enrollments(FLOW), runtime.campaign, tick, "outbox"
            )
            if plan.requests or plan.skipped or plan.ended:
                await advance(now=tick)
            tick += TICK
        return summary(runtime, len(leads), start, end)
    finally:
        runtime.close()


def summary(runtime: Runtime, lead_count: int, start: datetime, end: datetime) -> str:
    """Describe what the demo did: emails per step, skips, the outbox."""
    sends = runtime.store.sends_by_step(FLOW)
    skips = runtime.store.skips_by_reason(FLOW)
    outbox = runtime.settings.outbox_dir.resolve()
    files = sorted(outbox.glob("*.eml"))
    lines = [
        "",
        f"Nurture sequence: {lead_count} sample leads, "
        f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC",
        "",
        f"  {'step':<5}{'day':>4}  {'email':<20}{'sent':>6}",
    ]
    for number, step in enumerate(runtime.campaign.nurture.steps, start=1):
        sent = sends[step.slug]["sent"] if step.slug in sends else 0
        lines.append(f"  {number:<5}{step.day:>4}  {step.slug:<20}{sent:>6}")
    total = sum(counts.get("sent", 0) for counts in sends.values())
    lines.append(f"  {'':<5}{'':>4}  {'total':<20}{total:>6}")
    lines.append("")
    if skips:
        reasons = ", ".join(
            f"{reason} {count}" for reason, count in sorted(skips.items())
        )
        lines.append(f"Skipped sends by reason: {reasons}")
    else:
        lines.append("Skipped sends by reason: none")
    lines.append(f"Emails in the outbox: {len(files)} files in {outbox}")
    if files:
        lines.append(f"Read one with: cat {files[0]}")
    return "\n".join(lines)
