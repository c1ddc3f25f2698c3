"""The one path every outbound email takes, exactly once.

For a batch of wanted sends: claim ledger rows (the store checks suppression
and the daily cap in the same transaction), build each email, send it with the
row's idempotency key, then record the outcome. Outcomes are written as sends
finish, in small groups, so a crash loses as little as possible; a row left
pending by a crash is taken over by a later run once its lease ends, and sent
again under the same key, which the provider (or the outbox) recognises.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .channels.base import EmailChannel, OutgoingEmail, SendReceipt
from .errors import ApiError, CircuitOpenError, DeliveryRejected
from .store import Claim, SendRequest, Store

logger = logging.getLogger(__name__)

FLUSH_EVERY = 50


@dataclass
class DeliveryReport:
    """What happened to a batch of wanted sends."""

    sent: int = 0
    duplicates: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, other: DeliveryReport) -> None:
        """Add another report's counts to this one."""
        self.sent += other.sent
        self.duplicates += other.duplicates
        self.failed += other.failed
        self.deferred += other.deferred
        self.skipped.update(other.skipped)

    def as_dict(self) -> dict[str, int]:
        """The counts as a flat mapping, skips as ``skipped_<reason>``."""
        counts = {
            "sent": self.sent,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "deferred": self.deferred,
        }
        counts.update({f"skipped_{reason}": n for reason, n in self.skipped.items()})
        return counts


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """The limits a delivery runs under."""

    owner: str
    lease: timedelta
    daily_cap: int
    default_time_zone: str
    concurrency: int


async def deliver(
    requests: Sequence[SendRequest],
    *,
    store: Store,
    channel: EmailChannel,
    build: Callable[[SendRequest], OutgoingEmail],
    policy: SendPolicy,
    now: datetime,
) -> DeliveryReport:
    """Send ``requests`` through the ledger and return what happened.

    Args:
        requests: The sends wanted, at most one per (lead, flow, step).
        store: The store that holds the ledger.
        channel: Where the emails go.
        build: Makes the email for a claimed request.
        policy: The run's owner id, lease, daily cap and concurrency.
        now: The current time (a parameter so runs can be simulated).

    Returns:
        Counts of sent, duplicate, failed, deferred and skipped sends.

    Raises:
        ApiError: The service refused the run itself (a wrong key, an unknown
            template). The sends not yet made are held back and stay queued
            for the next run, once the setting is fixed.
    """
    claimed = store.claim(
        requests,
        owner=policy.owner,
        now=now,
        lease=policy.lease,
        daily_cap=policy.daily_cap,
        default_time_zone=policy.default_time_zone,
    )
    report = DeliveryReport(skipped=Counter(skip.reason for skip in claimed.skipped))
    if not claimed.claims:
        return report

    try:
        emails = [(claim, build(claim.request)) for claim in claimed.claims]
    except Exception:
        store.release(
            [(claim, "the email could not be built") for claim in claimed.claims],
            owner=policy.owner,
            at=now,
        )
        raise

    recorder = _Recorder(store, policy.owner, now, report)
    gate = asyncio.Semaphore(policy.concurrency)
    setup_errors: list[ApiError] = []

    async def send_one(claim: Claim, email: OutgoingEmail) -> None:
        async with gate:
            if setup_errors:
                recorder.deferred(claim, "held back: the service refused the run")
                return
            try:
                receipt = await channel.send(email)
            except DeliveryRejected as exc:
                recorder.failed(claim, str(exc))
            except ApiError as exc:
                # Only the provider's word about one message fails that send for
                # good; any other refusal (a wrong key, an unknown template) is
                # the project's setup, and every lead keeps its place.
                recorder.deferred(claim, str(exc))
                if not exc.retryable:
                    setup_errors.append(exc)
            except CircuitOpenError as exc:
                recorder.deferred(claim, str(exc))
            else:
                recorder.sent(claim, receipt)

    try:
        await asyncio.gather(*(send_one(claim, email) for claim, email in emails))
        if setup_errors:
            raise setup_errors[0]
    finally:
        recorder.flush()
        pending = recorder.unrecorded(claim for claim, _ in emails)
        if pending:
            store.release(
                [(claim, "the run stopped before this send") for claim in pending],
                owner=policy.owner,
                at=now,
            )
    return report


class _Recorder:
    """Collects send outcomes and writes them to the ledger in small groups."""

    def __init__(
        self, store: Store, owner: str, now: datetime, report: DeliveryReport
    ) -> None:
        self.store = store
        self.owner = owner
        self.now = now
        self.report = report
        self._sent: list[tuple[Claim, str | None]] = []
        self._failed: list[tuple[Claim, str]] = []
        self._deferred: list[tuple[Claim, str]] = []
        self._recorded: set[int] = set()

    def sent(self, claim: Claim, receipt: SendReceipt) -> None:
        if receipt.duplicate:
            self.report.duplicates += 1
        else:
            self.report.sent += 1
        self._sent.append((claim, receipt.provider_id))
        self._maybe_flush()

    def failed(self, claim: Claim, error: str) -> None:
        logger.warning(
            "Send %s for lead %s failed for good: %s",
            claim.request.step,
            claim.request.lead.id,
            error,
        )
        self.report.failed += 1
        self._failed.append((claim, error))
        self._maybe_flush()

    def deferred(self, claim: Claim, error: str) -> None:
        self.report.deferred += 1
        self._deferred.append((claim, error))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self._sent) + len(self._failed) + len(self._deferred) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write the collected outcomes."""
        if self._sent:
            self.store.mark_sent(self._sent, owner=self.owner, at=self.now)
        if self._failed:
            self.store.mark_failed(self._failed, owner=self.owner, at=self.now)
        if self._deferred:
            self.store.release(self._deferred, owner=self.owner, at=self.now)
        for outcomes in (self._sent, self._failed, self._deferred):
            self._recorded.update(claim.ledger_id for claim, _ in outcomes)
            outcomes.clear()

    def unrecorded(self, claims: Iterable[Claim]) -> list[Claim]:
        """The claims that have no outcome yet."""
        return [claim for claim in claims if claim.ledger_id not in self._recorded]
