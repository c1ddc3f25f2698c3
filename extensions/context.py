"""The context hook: values derived once from the answers, used by many files.

Copier runs a context hook in every phase; the derived values are only needed
to render files, so the hook does nothing outside the render phase. Computing
them in the prompt phase would also break ``copier update`` for answers that a
later template version adds.

This file is loaded on its own by copier-template-extensions, so it cannot
import its sibling ``filters.py``.
"""

from __future__ import annotations

from typing import Any

from copier_template_extensions import ContextHook
from jinja2 import Environment

# Every beat a Soap Opera Sequence can use, keyed by its slug: the title and
# what the email does. The content file for a beat is content/<slug>.md.
BEATS = {
    "call-to-action": (
        "Set the stage",
        "deliver what they asked for and invite the first step",
    ),
    "backstory": (
        "The backstory",
        "tell the story behind the offer, with high-value content",
    ),
    "epiphany": ("The epiphany bridge", "share the moment everything changed"),
    "social-proof": ("Social proof", "show people like them who got results"),
    "quick-win": ("A quick win", "give one practical tip they can use today"),
    "objections": ("The objections", "answer the reasons not to buy"),
    "case-study": ("A case study", "walk through one customer's story in depth"),
    "behind-the-scenes": ("Behind the scenes", "show how the work gets done"),
    "faq": ("Questions answered", "answer the questions leads ask most"),
    "common-mistakes": ("Common mistakes", "name the mistakes the offer prevents"),
    "future-pacing": ("Picture the result", "help them see life after the change"),
    "urgency": ("Urgency and scarcity", "explain why now, and what runs out"),
    "bonuses": ("The final push", "add the bonuses that tip the decision"),
    "last-chance": ("Last chance", "close the offer, kindly and clearly"),
}
# The arc for each sequence length. Seven is the classic sequence; shorter
# ones keep the opening and the close, longer ones add teaching before urgency.
CORE = ["call-to-action", "backstory", "epiphany", "social-proof"]
CLOSE = ["urgency", "bonuses", "last-chance"]
EXTRAS = [
    "quick-win",
    "objections",
    "case-study",
    "behind-the-scenes",
    "faq",
    "common-mistakes",
    "future-pacing",
]
SHORT_ARCS = {
    1: ["call-to-action"],
    2: ["call-to-action", "last-chance"],
    3: ["call-to-action", "backstory", "last-chance"],
    4: ["call-to-action", "backstory", "social-proof", "last-chance"],
    5: ["call-to-action", "backstory", "epiphany", "urgency", "last-chance"],
    6: [
        "call-to-action",
        "backstory",
        "epiphany",
        "social-proof",
        "urgency",
        "last-chance",
    ],
}


def sequence_arc(email_count: int) -> list[str]:
    """Return the beat slugs of a sequence of ``email_count`` emails, in order."""
    if email_count in SHORT_ARCS:
        return SHORT_ARCS[email_count]
    return CORE + EXTRAS[: email_count - 7] + CLOSE


def sequence_steps(email_count: int, cadence_days: int) -> list[dict[str, Any]]:
    """Return the sequence calendar: each step's number, slug, title and day."""
    return [
        {
            "number": index,
            "slug": slug,
            "title": BEATS[slug][0],
            "purpose": BEATS[slug][1],
            "day": index * cadence_days,
        }
        for index, slug in enumerate(sequence_arc(email_count))
    ]


def schedule_words(context: dict[str, Any], environment: Environment) -> str:
    """Describe the tick schedule in words for the README."""
    kind = context["schedule_kind"]
    if kind == "cron":
        describe = environment.filters["describe_cron"]
        return str(describe(context["schedule_cron"]))
    if kind == "interval":
        describe = environment.filters["describe_interval"]
        return str(describe(context["schedule_interval_minutes"]))
    describe = environment.filters["describe_rrule"]
    return str(describe(context["schedule_rrule"]))


class DerivedValues(ContextHook):
    """Add the derived values to the render context."""

    def hook(self, context: dict[str, Any]) -> None:
        """Derive the values in place, in the render phase only."""
        if context.get("_copier_phase") == "render":
            self.derive(context)

    def derive(self, context: dict[str, Any]) -> None:
        """Compute the derived values into ``context`` in place."""
        flows = list(context["campaign_flows"])
        steps = (
            sequence_steps(context["email_count"], context["cadence_days"])
            if "nurture" in flows
            else []
        )
        window_start, window_end = context["send_window"].strip().split("-")

        funnel = "funnel" in flows
        uses_crm = funnel or "scoring" in flows
        context["flows"] = flows
        context["assessment"] = funnel and context["lead_magnet_kind"] == "assessment"
        context["uses_crm"] = uses_crm
        context["notion"] = uses_crm and context["crm"] == "notion"
        context["sequence_steps"] = steps
        context["sequence_slugs"] = [step["slug"] for step in steps]
        context["sequence_days"] = steps[-1]["day"] if steps else 0
        context["schedule_words"] = schedule_words(context, self.environment)
        context["window_start"] = window_start
        context["window_end"] = window_end

        # Copier renders a skipped question with its default, so the launch
        # (default yes) is kept only where its question could be asked.
        social = "social" in flows
        emails = "nurture" in flows or funnel
        context["launch"] = bool(context.get("launch")) and social and emails
        # The flow that `run` shows in examples: the project's first one.
        context["example_run"] = next(
            name
            for flow, name in (
                ("nurture", "advance"),
                ("funnel", "funnel-tick"),
                ("scoring", "score-activities"),
                ("retargeting", "retarget"),
                ("social", "social"),
                ("etl", "etl"),
            )
            if flow in flows
        )
        context["dry_run_flows"] = [
            name
            for flow, name in (("retargeting", "retarget"), ("social", "social"))
            if flow in flows
        ]
        etl = "etl" in flows
        # The demo records opens, clicks and visits for what measures them.
        context["demo_activity"] = bool({"scoring", "retargeting", "etl"} & set(flows))
        # Skipped questions render with their defaults: keep only what applies.
        context["etl_sources"] = list(context.get("etl_sources") or []) if etl else []
        context["report_discord"] = (
            etl and context["discord_alerts"] and bool(context.get("report_discord"))
        )
        context["report_recipients"] = (
            [
                address.strip()
                for address in str(context.get("report_emails") or "").split(",")
                if address.strip()
            ]
            if etl
            else []
        )
        context["social_posting_times"] = (
            sorted(time.strip() for time in context["social_times"].split(","))
            if social
            else []
        )
