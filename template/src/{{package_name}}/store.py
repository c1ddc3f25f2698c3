"""The system of record: leads, consent, suppression, enrollments, the send ledger.

SQLAlchemy Core over SQLite by default, PostgreSQL by URL when several workers
share one store. Every outbound send goes through the ledger: a row per
(lead, flow, step) is claimed before the send and marked done after it, so a
retry, a crash or a second run at the same time never sends twice.

On SQLite, every write transaction starts with ``BEGIN IMMEDIATE``: writers
queue for the lock instead of failing half-way, which makes the check-then-
claim step below atomic. On PostgreSQL the lead rows are locked instead.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

SkipReason = Literal["suppressed", "exited", "capped", "outside_window"]
SendStatus = Literal["pending", "sent", "failed"]

SQLITE_BUSY_TIMEOUT_MS = 30_000


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as an aware UTC datetime."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = f"Timestamps must carry a time zone, got {value!r}."
            raise ValueError(msg)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# TODO: create and change tables with Alembic migrations (Prefect brings it)
# once a release of the template changes a table that projects already have;
# until then create_all() makes missing tables and touches no existing one.
metadata = sa.MetaData()

leads = sa.Table(
    "leads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("first_name", sa.String(100)),
    sa.Column("time_zone", sa.String(64)),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("purchased_at", UtcDateTime),
)
consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("lead_id", sa.ForeignKey("leads.id"), nullable=False, index=True),
    sa.Column("granted_at", UtcDateTime, nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("ip_address", sa.String(45)),
    sa.Column("form_version", sa.String(50)),
)
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("reason", sa.String(50), nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
enrollments = sa.Table(
    "enrollments",
    metadata,
    sa.Column("lead_id", sa.ForeignKey("leads.id"), primary_key=True),
    sa.Column("flow", sa.String(30), primary_key=True),
    sa.Column("enrolled_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, default="active"),
    sa.Column("ended_at", UtcDateTime),
    sa.Column("end_reason", sa.String(50)),
)
send_ledger = sa.Table(
    "send_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("lead_id", sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("flow", sa.String(30), nullable=False),
    sa.Column("step", sa.String(60), nullable=False),
    sa.Column("channel", sa.String(30), nullable=False),
    sa.Column("marketing", sa.Boolean, nullable=False),
    sa.Column("idempotency_key", sa.String(100), nullable=False, unique=True),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("owner", sa.String(40), nullable=False),
    sa.Column("lease_until", UtcDateTime, nullable=False),
    sa.Column("claimed_at", UtcDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("provider_id", sa.String(200)),
    sa.Column("error", sa.Text),
    sa.UniqueConstraint("lead_id", "flow", "step"),
    sa.Index("ix_send_ledger_lead_claimed", "lead_id", "claimed_at"),
)
skips = sa.Table(
    "skips",
    metadata,
    sa.Column("lead_id", sa.ForeignKey("leads.id"), primary_key=True),
    sa.Column("flow", sa.String(30), primary_key=True),
    sa.Column("step", sa.String(60), primary_key=True),
    sa.Column("reason", sa.String(20), primary_key=True),
    sa.Column("first_at", UtcDateTime, nullable=False),
    sa.Column("last_at", UtcDateTime, nullable=False),
    sa.Column("times", sa.Integer, nullable=False),
)
inbound_events = sa.Table(
    "inbound_events",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("type", sa.String(50), nullable=False),
    sa.Column("lead_email", sa.String(320), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("emitted_at", UtcDateTime, index=True),
    sa.Column("emit_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("emit_error", sa.Text),
)
activities = sa.Table(
    "activities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, index=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("event_id", sa.ForeignKey("inbound_events.id"), nullable=False),
)
signups = sa.Table(
    "signups",
    metadata,
    sa.Column("lead_id", sa.ForeignKey("leads.id"), primary_key=True),
    # A lead dropped for not confirming may sign up again: a new attempt.
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("requested_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("confirmed_at", UtcDateTime),
    # When the confirmed lead got everything: the magnet, the CRM, the alert.
    sa.Column("delivered_at", UtcDateTime),
    sa.Column("ended_at", UtcDateTime),
)
assessments = sa.Table(
    "assessments",
    metadata,
    sa.Column("event_id", sa.ForeignKey("inbound_events.id"), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, index=True),
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("completed_at", UtcDateTime, nullable=False),
)
lead_scores = sa.Table(
    "lead_scores",
    metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("breakdown", sa.JSON, nullable=False),
    sa.Column("hot", sa.Boolean, nullable=False),
    sa.Column("crossings", sa.Integer, nullable=False, default=0),
    sa.Column("computed_at", UtcDateTime, nullable=False),
)
hot_crossings = sa.Table(
    "hot_crossings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    # The lead's n-th crossing of the threshold: one alert each.
    sa.Column("crossing", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("crossed_at", UtcDateTime, nullable=False),
    sa.Column("alerted_at", UtcDateTime, index=True),
    sa.UniqueConstraint("email", "crossing"),
)
crm_contacts = sa.Table(
    "crm_contacts",
    metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("first_name", sa.String(100)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("score", sa.Integer),
    sa.Column("source", sa.String(100)),
    sa.Column("signed_up_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
crm_sync = sa.Table(
    "crm_sync",
    metadata,
    sa.Column("crm", sa.String(20), primary_key=True),
    sa.Column("email", sa.String(320), primary_key=True),
    # A hash of what was last written, so an unchanged contact is skipped.
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(100)),
    sa.Column("synced_at", UtcDateTime, nullable=False),
)
watermarks = sa.Table(
    "watermarks",
    metadata,
    # How far a flow has read a growing table, such as the scored activities.
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)
secrets_table = sa.Table(
    "project_secrets",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Lead:
    """A lead as the flows see it."""

    id: int
    email: str
    first_name: str | None
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class Enrollment:
    """A lead's place in a flow: when it started and which steps are done."""

    lead: Lead
    flow: str
    enrolled_at: datetime
    purchased: bool
    suppressed: bool
    done_steps: frozenset[str]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An accepted inbound event that still has to reach Prefect."""

    id: str
    type: str
    lead_email: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Signup:
    """A funnel sign-up that still needs work: confirming, or delivering."""

    lead: Lead
    attempt: int
    status: str
    requested_at: datetime
    confirmed_at: datetime | None
    suppressed: bool
    done_steps: frozenset[str]
    failed_steps: frozenset[str]
    answers: dict[str, int] | None


@dataclass(frozen=True, slots=True)
class HotCrossing:
    """A lead that became hot: by its score, or by its assessment."""

    id: int
    email: str
    crossing: int
    reason: str
    score: int
    crossed_at: datetime


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One send the flows want to make: a lead, a flow, a step, a channel."""

    lead: Lead
    flow: str
    step: str
    channel: str
    idempotency_key: str
    marketing: bool = True


@dataclass(frozen=True, slots=True)
class Claim:
    """A ledger row this run owns: it may send, then must mark it."""

    ledger_id: int
    request: SendRequest
    attempts: int


@dataclass(frozen=True, slots=True)
class Skip:
    """A send that did not happen, and why."""

    lead_id: int
    flow: str
    step: str
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What a claim gave this run, and which sends it skipped and why."""

    claims: list[Claim]
    skipped: list[Skip]


class Store:
    """The project's database: one instance per process, thread-safe.

    Args:
        url: A SQLAlchemy URL; ``sqlite:///data/campaign.db`` by default.
    """

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        self.engine = _create_engine(url)
        metadata.create_all(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: on SQLite it holds the write lock from the start."""
        with self.engine.begin() as connection:
            yield connection

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # Leads, consent and suppression ------------------------------------

    def add_lead(
        self,
        email: str,
        *,
        source: str,
        at: datetime,
        first_name: str | None = None,
        time_zone: str | None = None,
        ip_address: str | None = None,
        form_version: str | None = None,
    ) -> tuple[Lead, bool]:
        """Add a lead, or find it by email, and record its consent.

        Args:
            email: The normalised email address.
            source: Where the consent came from, such as ``"import:leads.csv"``.
            at: When the lead gave consent.
            first_name: The first name, kept when the lead already exists.
            time_zone: An IANA time zone name, or ``None`` for the campaign's.
            ip_address: The address the opt-in came from, when known.
            form_version: The version of the form the lead filled in.

        Returns:
            The lead and whether it is new.
        """
        with self.transaction() as connection:
            return _add_lead(
                connection,
                email,
                source=source,
                at=at,
                first_name=first_name,
                time_zone=time_zone,
                ip_address=ip_address,
                form_version=form_version,
            )

    def add_and_enroll(
        self,
        new_leads: Sequence[dict[str, str | None]],
        *,
        flow: str,
        source: str,
        at: datetime,
    ) -> list[Lead]:
        """Add leads in bulk, record their consent, and enroll them in ``flow``.

        Leads already stored keep their record; a repeated email in the batch
        counts once. Every lead's consent is recorded with ``at`` and
        ``source``.

        Args:
            new_leads: Mappings with ``email`` (normalised), ``first_name`` and
                ``time_zone``.
            flow: The flow to enroll them in.
            source: Where the consent came from.
            at: When consent was given; also the enrollment time.

        Returns:
            The leads that were not yet enrolled in ``flow``, in input order.
        """
        by_email = {lead["email"]: lead for lead in new_leads}
        if not by_email:
            return []
        with self.transaction() as connection:
            connection.execute(
                insert_ignoring_duplicates(connection, leads),
                [
                    {
                        "email": email,
                        "first_name": lead.get("first_name"),
                        "time_zone": lead.get("time_zone"),
                        "source": source,
                        "created_at": at,
                    }
                    for email, lead in by_email.items()
                ],
            )
            stored = {
                row.email: Lead(row.id, row.email, row.first_name, row.time_zone)
                for row in connection.execute(
                    sa.select(leads).where(leads.c.email.in_(by_email))
                )
            }
            connection.execute(
                sa.insert(consents),
                [
                    {"lead_id": lead.id, "granted_at": at, "source": source}
                    for lead in stored.values()
                ],
            )
            enrolled = connection.execute(
                insert_ignoring_duplicates(connection, enrollments).returning(
                    enrollments.c.lead_id
                ),
                [
                    {
                        "lead_id": lead.id,
                        "flow": flow,
                        "enrolled_at": at,
                        "status": "active",
                    }
                    for lead in stored.values()
                ],
            )
            new_ids = set(enrolled.scalars())
        return [stored[email] for email in by_email if stored[email].id in new_ids]

    def lead_by_id(self, lead_id: int) -> Lead | None:
        """Return the lead with this id, if there is one."""
        return self._one_lead(leads.c.id == lead_id)

    def find_lead(self, email: str) -> Lead | None:
        """Return the lead with this normalised email, if there is one."""
        return self._one_lead(leads.c.email == email)

    def _one_lead(self, condition: sa.ColumnElement[bool]) -> Lead | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(leads).where(condition)).one_or_none()
        if row is None:
            return None
        return Lead(row.id, row.email, row.first_name, row.time_zone)

    def suppress(self, email: str, *, reason: str, source: str, at: datetime) -> bool:
        """Put an address on the suppression list; return whether it is new."""
        with self.transaction() as connection:
            result = connection.execute(
                insert_ignoring_duplicates(connection, suppressions).values(
                    email=email, reason=reason, source=source, created_at=at
                )
            )
        return result.rowcount == 1

    def is_suppressed(self, email: str) -> bool:
        """Tell whether an address is on the suppression list."""
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.select(suppressions.c.email).where(suppressions.c.email == email)
            ).first()
        return found is not None

    def record_purchase(self, email: str, *, at: datetime) -> bool:
        """Mark a lead as a buyer, which ends its nurture; False if unknown."""
        with self.transaction() as connection:
            connection.execute(
                sa.update(leads)
                .where(leads.c.email == email, leads.c.purchased_at.is_(None))
                .values(purchased_at=at)
            )
            known = connection.execute(
                sa.select(leads.c.id).where(leads.c.email == email)
            ).first()
        return known is not None

    # Enrollments -------------------------------------------------------

    def enroll(self, lead_id: int, flow: str, *, at: datetime) -> bool:
        """Enroll a lead in a flow; return False if it already was."""
        with self.transaction() as connection:
            result = connection.execute(
                insert_ignoring_duplicates(connection, enrollments).values(
                    lead_id=lead_id, flow=flow, enrolled_at=at, status="active"
                )
            )
        return result.rowcount == 1

    def active_enrollments(self, flow: str) -> list[Enrollment]:
        """Return every active enrollment in ``flow`` with its finished steps."""
        finished = sa.select(send_ledger.c.lead_id, send_ledger.c.step).where(
            send_ledger.c.flow == flow,
            send_ledger.c.status.in_(("sent", "failed")),
        )
        query = (
            sa.select(
                leads,
                enrollments.c.enrolled_at,
                suppressions.c.email.label("suppressed_email"),
            )
            .join(enrollments, enrollments.c.lead_id == leads.c.id)
            .outerjoin(suppressions, suppressions.c.email == leads.c.email)
            .where(enrollments.c.flow == flow, enrollments.c.status == "active")
            .order_by(leads.c.id)
        )
        with self.engine.connect() as connection:
            done: dict[int, set[str]] = {}
            for lead_id, step in connection.execute(finished):
                done.setdefault(lead_id, set()).add(step)
            rows = connection.execute(query).all()
        return [
            Enrollment(
                lead=Lead(row.id, row.email, row.first_name, row.time_zone),
                flow=flow,
                enrolled_at=row.enrolled_at,
                purchased=row.purchased_at is not None,
                suppressed=row.suppressed_email is not None,
                done_steps=frozenset(done.get(row.id, ())),
            )
            for row in rows
        ]

    def end_enrollments(
        self, ended: Iterable[tuple[int, str, str]], *, at: datetime
    ) -> None:
        """End enrollments: each item is (lead id, flow, reason)."""
        with self.transaction() as connection:
            for lead_id, flow, reason in ended:
                status = "completed" if reason == "completed" else "exited"
                connection.execute(
                    sa.update(enrollments)
                    .where(
                        enrollments.c.lead_id == lead_id,
                        enrollments.c.flow == flow,
                        enrollments.c.status == "active",
                    )
                    .values(status=status, ended_at=at, end_reason=reason)
                )

    # The send ledger ---------------------------------------------------

    def claim(
        self,
        requests: Sequence[SendRequest],
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        daily_cap: int,
        default_time_zone: str,
    ) -> ClaimResult:
        """Claim ledger rows for ``requests`` after the last checks.

        In one transaction: drop requests for suppressed addresses and for
        leads that reached the daily cap of marketing emails (counted in each
        lead's local day across every flow of the project), then claim a row
        per remaining (lead, flow, step). A row already sent, or claimed by a
        run whose lease has not run out, is left alone; a row whose lease ran
        out (its run crashed) is taken over with its idempotency key, so the
        provider can drop a repeat.

        Returns:
            The rows this run owns, and the skipped sends with their reasons.
        """
        if not requests:
            return ClaimResult([], [])
        lead_ids = sorted({request.lead.id for request in requests})
        skipped: list[Skip] = []
        with self.transaction() as connection:
            _lock_leads(connection, lead_ids)
            suppressed = set(
                connection.execute(
                    sa.select(suppressions.c.email).where(
                        suppressions.c.email.in_(
                            {request.lead.email for request in requests}
                        )
                    )
                ).scalars()
            )
            sent_today = _marketing_sends_today(
                connection, requests, now=now, default_time_zone=default_time_zone
            )
            wanted: list[SendRequest] = []
            for request in requests:
                if request.lead.email in suppressed:
                    skipped.append(_skip(request, "suppressed"))
                elif request.marketing and sent_today[request.lead.id] >= daily_cap:
                    skipped.append(_skip(request, "capped"))
                else:
                    wanted.append(request)
                    sent_today[request.lead.id] += int(request.marketing)
            claims = _claim_rows(connection, wanted, owner=owner, now=now, lease=lease)
            _record_skips(connection, skipped, now)
        return ClaimResult(claims, skipped)

    def mark_sent(
        self, sent: Iterable[tuple[Claim, str | None]], *, owner: str, at: datetime
    ) -> None:
        """Mark claimed rows as sent, with the provider's message id."""
        self._update_claims(
            (
                (claim, {"status": "sent", "sent_at": at, "provider_id": provider_id})
                for claim, provider_id in sent
            ),
            owner=owner,
        )

    def mark_failed(
        self, failed: Iterable[tuple[Claim, str]], *, owner: str, at: datetime
    ) -> None:
        """Mark claimed rows as failed for good: they will not be retried."""
        self._update_claims(
            (
                (claim, {"status": "failed", "sent_at": at, "error": error[:2000]})
                for claim, error in failed
            ),
            owner=owner,
        )

    def release(
        self, released: Iterable[tuple[Claim, str]], *, owner: str, at: datetime
    ) -> None:
        """Give claimed rows back after a passing failure, for the next run.

        The row stays pending with its idempotency key, and its lease ends now,
        so the next run takes it over and the provider can drop a repeat.
        """
        self._update_claims(
            (
                (claim, {"lease_until": at, "error": error[:2000]})
                for claim, error in released
            ),
            owner=owner,
            pending_only=True,
        )

    def _update_claims(
        self,
        updates: Iterable[tuple[Claim, dict[str, Any]]],
        *,
        owner: str,
        pending_only: bool = False,
    ) -> None:
        """Write new values to rows this run claimed, if it still owns them."""
        with self.transaction() as connection:
            for claim, values in updates:
                statement = sa.update(send_ledger).where(
                    send_ledger.c.id == claim.ledger_id, send_ledger.c.owner == owner
                )
                if pending_only:
                    statement = statement.where(send_ledger.c.status == "pending")
                connection.execute(statement.values(**values))

    def record_skips(self, skipped: Iterable[Skip], *, at: datetime) -> None:
        """Record sends that did not happen, once per reason, with a count."""
        with self.transaction() as connection:
            _record_skips(connection, list(skipped), at)

    # Inbound events ----------------------------------------------------

    def accept_event(
        self,
        event_id: str,
        event_type: str,
        data: dict[str, Any],
        *,
        occurred_at: datetime,
        received_at: datetime,
        enroll_in: Sequence[str] = (),
        sign_up: bool = False,
    ) -> bool:
        """Store an inbound event and apply it, in one transaction.

        An opt-in (or a completed assessment, which carries one) adds the lead
        with its consent, enrolls it in the flows of ``enroll_in`` (their tick
        sends what is due) and, with ``sign_up``, starts a funnel sign-up. An
        unsubscribe puts the address on the suppression list; a purchase
        marks the lead a buyer; purchases and activities are recorded for
        scoring.

        Returns:
            False when an event with this id was already stored: nothing is
            applied twice.
        """
        email = data["email"]
        with self.transaction() as connection:
            stored = connection.execute(
                insert_ignoring_duplicates(connection, inbound_events).values(
                    id=event_id,
                    type=event_type,
                    lead_email=email,
                    payload=data,
                    occurred_at=occurred_at,
                    received_at=received_at,
                    emit_attempts=0,
                )
            )
            if stored.rowcount != 1:
                return False
            if event_type in ("lead.opted_in", "assessment.completed"):
                lead, _ = _add_lead(
                    connection,
                    email,
                    source=data["source"],
                    at=occurred_at,
                    first_name=data.get("first_name"),
                    time_zone=data.get("time_zone"),
                    ip_address=data.get("ip_address"),
                    form_version=data.get("form_version"),
                )
                for flow in enroll_in:
                    connection.execute(
                        insert_ignoring_duplicates(connection, enrollments).values(
                            lead_id=lead.id,
                            flow=flow,
                            enrolled_at=occurred_at,
                            status="active",
                        )
                    )
                if sign_up:
                    _start_signup(
                        connection,
                        lead.id,
                        data["source"],
                        occurred_at,
                        reopen=event_type == "assessment.completed",
                    )
                if event_type == "assessment.completed":
                    connection.execute(
                        sa.insert(assessments).values(
                            event_id=event_id,
                            email=email,
                            answers=data["answers"],
                            completed_at=occurred_at,
                        )
                    )
            elif event_type == "lead.unsubscribed":
                connection.execute(
                    insert_ignoring_duplicates(connection, suppressions).values(
                        email=email,
                        reason="unsubscribed",
                        source=f"event:{event_id}",
                        created_at=occurred_at,
                    )
                )
            elif event_type in ("lead.purchased", "lead.activity"):
                if event_type == "lead.purchased":
                    connection.execute(
                        sa.update(leads)
                        .where(leads.c.email == email, leads.c.purchased_at.is_(None))
                        .values(purchased_at=occurred_at)
                    )
                connection.execute(
                    sa.insert(activities).values(
                        email=email,
                        kind=data.get("kind", "purchase"),
                        url=data.get("url"),
                        occurred_at=occurred_at,
                        event_id=event_id,
                    )
                )
        return True

    def events_to_emit(self, limit: int) -> list[StoredEvent]:
        """The oldest accepted events that have not reached Prefect yet."""
        query = (
            sa.select(
                inbound_events.c.id,
                inbound_events.c.type,
                inbound_events.c.lead_email,
                inbound_events.c.occurred_at,
            )
            .where(inbound_events.c.emitted_at.is_(None))
            .order_by(inbound_events.c.received_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [StoredEvent(*row) for row in connection.execute(query)]

    def record_emission(
        self, event_ids: Sequence[str], *, at: datetime, error: str | None = None
    ) -> None:
        """Record that events reached Prefect, or why they did not (yet)."""
        values: dict[str, Any] = {"emit_attempts": inbound_events.c.emit_attempts + 1}
        if error is None:
            values["emitted_at"] = at
        else:
            values["emit_error"] = error[:2000]
        with self.transaction() as connection:
            connection.execute(
                sa.update(inbound_events)
                .where(inbound_events.c.id.in_(event_ids))
                .values(**values)
            )

    # The funnel --------------------------------------------------------

    def open_signups(self, flow: str, email: str | None = None) -> list[Signup]:
        """Sign-ups waiting for confirmation, and confirmed ones not delivered.

        Args:
            flow: The funnel's flow name, whose ledger rows are the done steps.
            email: Only this lead's sign-up, when given.
        """
        done_query = (
            sa.select(send_ledger.c.lead_id, send_ledger.c.step, send_ledger.c.status)
            .join(signups, signups.c.lead_id == send_ledger.c.lead_id)
            .where(
                send_ledger.c.flow == flow,
                send_ledger.c.status.in_(("sent", "failed")),
                signups.c.delivered_at.is_(None),
                signups.c.status.in_(("pending", "confirmed")),
            )
        )
        query = (
            sa.select(
                leads,
                signups.c.attempt,
                signups.c.status,
                signups.c.requested_at,
                signups.c.confirmed_at,
                suppressions.c.email.label("suppressed_email"),
            )
            .join(signups, signups.c.lead_id == leads.c.id)
            .outerjoin(suppressions, suppressions.c.email == leads.c.email)
            .where(
                signups.c.delivered_at.is_(None),
                signups.c.status.in_(("pending", "confirmed")),
            )
            .order_by(signups.c.requested_at, leads.c.id)
        )
        if email is not None:
            query = query.where(leads.c.email == email)
            done_query = done_query.where(
                send_ledger.c.lead_id.in_(
                    sa.select(leads.c.id).where(leads.c.email == email)
                )
            )
        with self.engine.connect() as connection:
            done: dict[int, set[str]] = {}
            failed: dict[int, set[str]] = {}
            for lead_id, step, status in connection.execute(done_query):
                done.setdefault(lead_id, set()).add(step)
                if status == "failed":
                    failed.setdefault(lead_id, set()).add(step)
            rows = connection.execute(query).all()
            answers = _latest_answers(connection, [row.email for row in rows])
        return [
            Signup(
                lead=Lead(row.id, row.email, row.first_name, row.time_zone),
                attempt=row.attempt,
                status=row.status,
                requested_at=row.requested_at,
                confirmed_at=row.confirmed_at,
                suppressed=row.suppressed_email is not None,
                done_steps=frozenset(done.get(row.id, ())),
                failed_steps=frozenset(failed.get(row.id, ())),
                answers=answers.get(row.email),
            )
            for row in rows
        ]

    def confirm_signup(
        self, lead: Lead, attempt: int, *, at: datetime, ip_address: str | None
    ) -> Literal["confirmed", "already", "dropped"]:
        """Confirm a sign-up from its link, record the consent, and say so.

        The confirmation is also stored as a ``lead.confirmed`` inbound event,
        so the emitter tells Prefect and the funnel delivers at once.
        """
        with self.transaction() as connection:
            row = connection.execute(
                sa.select(signups.c.status).where(
                    signups.c.lead_id == lead.id, signups.c.attempt == attempt
                )
            ).one_or_none()
            if row is None or row.status == "dropped":
                return "dropped"
            if row.status != "pending":
                return "already"
            connection.execute(
                sa.update(signups)
                .where(signups.c.lead_id == lead.id, signups.c.attempt == attempt)
                .values(status="confirmed", confirmed_at=at)
            )
            connection.execute(
                sa.insert(consents).values(
                    lead_id=lead.id,
                    granted_at=at,
                    source="double-opt-in",
                    ip_address=ip_address,
                )
            )
            connection.execute(
                sa.insert(inbound_events).values(
                    id=f"confirm-{lead.id}-{attempt}",
                    type="lead.confirmed",
                    lead_email=lead.email,
                    payload={"email": lead.email, "attempt": attempt},
                    occurred_at=at,
                    received_at=at,
                    emit_attempts=0,
                )
            )
        return "confirmed"

    def drop_signups(self, dropped: Iterable[tuple[int, int]], *, at: datetime) -> None:
        """End open sign-ups: never confirmed, unsubscribed, or undeliverable.

        Each item is (lead id, attempt). A lead who signs up again later
        starts a new attempt.
        """
        with self.transaction() as connection:
            for lead_id, attempt in dropped:
                connection.execute(
                    sa.update(signups)
                    .where(
                        signups.c.lead_id == lead_id,
                        signups.c.attempt == attempt,
                        signups.c.status.in_(("pending", "confirmed")),
                        signups.c.delivered_at.is_(None),
                    )
                    .values(status="dropped", ended_at=at)
                )

    def complete_signup(
        self,
        signup: Signup,
        *,
        at: datetime,
        enroll_in: Sequence[str] = (),
        hot_score: int | None = None,
    ) -> bool:
        """Finish a delivered sign-up in one transaction; False if already done.

        Enrolls the lead in ``enroll_in`` from now, and with ``hot_score``
        records that its assessment made it hot. Without double opt-in, a
        sign-up is confirmed here, by its delivery.
        """
        with self.transaction() as connection:
            finished = connection.execute(
                sa.update(signups)
                .where(
                    signups.c.lead_id == signup.lead.id,
                    signups.c.attempt == signup.attempt,
                    signups.c.delivered_at.is_(None),
                )
                .values(
                    delivered_at=at,
                    status="confirmed",
                    confirmed_at=sa.func.coalesce(signups.c.confirmed_at, at),
                )
            )
            if finished.rowcount != 1:
                return False
            for flow in enroll_in:
                connection.execute(
                    insert_ignoring_duplicates(connection, enrollments).values(
                        lead_id=signup.lead.id,
                        flow=flow,
                        enrolled_at=at,
                        status="active",
                    )
                )
            if hot_score is not None:
                add_crossing(
                    connection,
                    signup.lead.email,
                    reason="assessment",
                    score=hot_score,
                    at=at,
                )
        return True

    def signups_by_status(self) -> Counter[str]:
        """Count sign-ups per status, with ``delivered`` for confirmed and done."""
        query = sa.select(
            signups.c.status, signups.c.delivered_at.is_not(None), sa.func.count()
        ).group_by(signups.c.status, signups.c.delivered_at.is_not(None))
        counts: Counter[str] = Counter()
        with self.engine.connect() as connection:
            for status, delivered, count in connection.execute(query):
                counts["delivered" if delivered else status] += count
        return counts

    # Activities --------------------------------------------------------

    def activity_emails_after(self, position: int) -> tuple[list[str], int]:
        """The leads with activities stored after ``position``, and the newest one.

        Returns:
            The leads' emails, and the id of the newest activity (``position``
            itself when there is none), to pass next time.
        """
        with self.engine.connect() as connection:
            newest = connection.execute(
                sa.select(sa.func.max(activities.c.id)).where(
                    activities.c.id > position
                )
            ).scalar_one()
            if newest is None:
                return [], position
            emails = connection.execute(
                sa.select(activities.c.email)
                .where(activities.c.id > position, activities.c.id <= newest)
                .distinct()
            ).scalars()
            return sorted(emails), int(newest)

    def watermark(self, name: str) -> int:
        """How far the reader ``name`` got; 0 before its first run."""
        with self.engine.connect() as connection:
            position = connection.execute(
                sa.select(watermarks.c.position).where(watermarks.c.name == name)
            ).scalar_one_or_none()
        return position or 0

    def set_watermark(self, name: str, position: int) -> None:
        """Record how far the reader ``name`` got."""
        with self.transaction() as connection:
            updated = connection.execute(
                sa.update(watermarks)
                .where(watermarks.c.name == name)
                .values(position=position)
            )
            if updated.rowcount == 0:
                connection.execute(
                    sa.insert(watermarks).values(name=name, position=position)
                )

    # Reports and secrets -----------------------------------------------

    def sends_by_step(self, flow: str) -> dict[str, Counter[str]]:
        """Count ledger rows per step and status for ``flow``."""
        query = (
            sa.select(send_ledger.c.step, send_ledger.c.status, sa.func.count())
            .where(send_ledger.c.flow == flow)
            .group_by(send_ledger.c.step, send_ledger.c.status)
        )
        counts: dict[str, Counter[str]] = {}
        with self.engine.connect() as connection:
            for step, status, count in connection.execute(query):
                counts.setdefault(step, Counter())[status] = count
        return counts

    def skips_by_reason(self, flow: str) -> Counter[str]:
        """Count skipped sends per reason for ``flow`` (each lead and step once)."""
        query = (
            sa.select(skips.c.reason, sa.func.count())
            .where(skips.c.flow == flow)
            .group_by(skips.c.reason)
        )
        with self.engine.connect() as connection:
            return Counter(
                {reason: count for reason, count in connection.execute(query)}
            )

    def activity_since(self, since: datetime) -> dict[str, int]:
        """Count sends, failures, new leads and unsubscribes since ``since``."""
        with self.engine.connect() as connection:

            def count(query: sa.Select[Any]) -> int:
                return int(connection.execute(query).scalar_one())

            return {
                "sent": count(
                    sa.select(sa.func.count())
                    .select_from(send_ledger)
                    .where(
                        send_ledger.c.status == "sent", send_ledger.c.sent_at >= since
                    )
                ),
                "failed": count(
                    sa.select(sa.func.count())
                    .select_from(send_ledger)
                    .where(
                        send_ledger.c.status == "failed", send_ledger.c.sent_at >= since
                    )
                ),
                "new_leads": count(
                    sa.select(sa.func.count())
                    .select_from(leads)
                    .where(leads.c.created_at >= since)
                ),
                "unsubscribed": count(
                    sa.select(sa.func.count())
                    .select_from(suppressions)
                    .where(suppressions.c.created_at >= since)
                ),
            }

    def unalerted_crossings(self, limit: int = 500) -> list[HotCrossing]:
        """Hot-lead crossings whose alert has not been posted yet, oldest first."""
        query = (
            sa.select(
                hot_crossings.c.id,
                hot_crossings.c.email,
                hot_crossings.c.crossing,
                hot_crossings.c.reason,
                hot_crossings.c.score,
                hot_crossings.c.crossed_at,
            )
            .where(hot_crossings.c.alerted_at.is_(None))
            .order_by(hot_crossings.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [HotCrossing(*row) for row in connection.execute(query)]

    def mark_alerted(self, crossing_ids: Sequence[int], *, at: datetime) -> None:
        """Record that the alerts of these crossings were posted."""
        with self.transaction() as connection:
            connection.execute(
                sa.update(hot_crossings)
                .where(hot_crossings.c.id.in_(crossing_ids))
                .values(alerted_at=at)
            )

    def top_scores(self, limit: int) -> list[tuple[str, int, bool]]:
        """The highest scores: each lead's email, score and whether it is hot."""
        query = (
            sa.select(lead_scores.c.email, lead_scores.c.score, lead_scores.c.hot)
            .order_by(lead_scores.c.score.desc(), lead_scores.c.email)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                (email, score, hot) for email, score, hot in connection.execute(query)
            ]

    def project_secret(self, name: str) -> str:
        """Return a random secret kept in the store, made on first use.

        Used for values that must stay stable but that nobody has to type, such
        as the key that signs unsubscribe links when none is set.
        """
        with self.transaction() as connection:
            connection.execute(
                insert_ignoring_duplicates(connection, secrets_table).values(
                    name=name, value=secrets.token_urlsafe(32)
                )
            )
            value: str = connection.execute(
                sa.select(secrets_table.c.value).where(secrets_table.c.name == name)
            ).scalar_one()
        return value


def _add_lead(
    connection: Connection,
    email: str,
    *,
    source: str,
    at: datetime,
    first_name: str | None,
    time_zone: str | None,
    ip_address: str | None,
    form_version: str | None,
) -> tuple[Lead, bool]:
    """Add or find a lead and record its consent, inside a transaction."""
    row = connection.execute(
        sa.select(leads).where(leads.c.email == email)
    ).one_or_none()
    created = row is None
    if row is None:
        lead_id = connection.execute(
            sa.insert(leads)
            .values(
                email=email,
                first_name=first_name,
                time_zone=time_zone,
                source=source,
                created_at=at,
            )
            .returning(leads.c.id)
        ).scalar_one()
        lead = Lead(lead_id, email, first_name, time_zone)
    else:
        lead = Lead(
            row.id, row.email, row.first_name or first_name, row.time_zone or time_zone
        )
        if lead.first_name != row.first_name or lead.time_zone != row.time_zone:
            connection.execute(
                sa.update(leads)
                .where(leads.c.id == row.id)
                .values(first_name=lead.first_name, time_zone=lead.time_zone)
            )
    connection.execute(
        sa.insert(consents).values(
            lead_id=lead.id,
            granted_at=at,
            source=source,
            ip_address=ip_address,
            form_version=form_version,
        )
    )
    return lead, created


def _start_signup(
    connection: Connection,
    lead_id: int,
    source: str,
    at: datetime,
    *,
    reopen: bool,
) -> None:
    """Start a sign-up, unless one is open or done; a dropped one starts anew.

    With ``reopen``, a delivered sign-up is opened again, so that a lead who
    took the assessment after getting the magnet gets their results.
    """
    latest = connection.execute(
        sa.select(signups.c.attempt, signups.c.status)
        .where(signups.c.lead_id == lead_id)
        .order_by(signups.c.attempt.desc())
        .limit(1)
    ).one_or_none()
    if latest is not None and latest.status != "dropped":
        if reopen and latest.status == "confirmed":
            connection.execute(
                sa.update(signups)
                .where(
                    signups.c.lead_id == lead_id, signups.c.attempt == latest.attempt
                )
                .values(delivered_at=None)
            )
        return
    connection.execute(
        sa.insert(signups).values(
            lead_id=lead_id,
            attempt=1 if latest is None else latest.attempt + 1,
            source=source,
            requested_at=at,
            status="pending",
        )
    )


def _latest_answers(
    connection: Connection, emails: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Each lead's latest assessment answers, by email."""
    latest: dict[str, dict[str, int]] = {}
    for start in range(0, len(emails), 500):
        query = (
            sa.select(assessments.c.email, assessments.c.answers)
            .where(assessments.c.email.in_(emails[start : start + 500]))
            .order_by(assessments.c.completed_at)
        )
        for email, answers in connection.execute(query):
            latest[email] = answers
    return latest


def add_crossing(
    connection: Connection, email: str, *, reason: str, score: int, at: datetime
) -> int:
    """Record a lead becoming hot, inside a transaction; return its number.

    Each crossing gets the next number for its lead, and one alert: the alert
    is posted later and marked with ``Store.mark_alerted``.
    """
    latest = connection.execute(
        sa.select(sa.func.max(hot_crossings.c.crossing)).where(
            hot_crossings.c.email == email
        )
    ).scalar_one()
    number = (latest or 0) + 1
    connection.execute(
        sa.insert(hot_crossings).values(
            email=email, crossing=number, reason=reason, score=score, crossed_at=at
        )
    )
    return number


def _create_engine(url: str) -> Engine:
    """Create the engine; on SQLite, make every write take the lock up front."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def insert_ignoring_duplicates(connection: Connection, table: sa.Table) -> Any:
    """An INSERT that does nothing when the row's key already exists."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


def _lock_leads(connection: Connection, lead_ids: list[int]) -> None:
    """On PostgreSQL, lock the leads' rows so cap checks cannot race."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.select(leads.c.id).where(leads.c.id.in_(lead_ids)).with_for_update()
        )


def _marketing_sends_today(
    connection: Connection,
    requests: Sequence[SendRequest],
    *,
    now: datetime,
    default_time_zone: str,
) -> Counter[int]:
    """Count each lead's marketing sends since its local midnight."""
    midnights: dict[str, list[int]] = {}
    for request in requests:
        zone = request.lead.time_zone or default_time_zone
        midnights.setdefault(zone, []).append(request.lead.id)
    # A row being taken over again must not count against its own lead.
    keys = [request.idempotency_key for request in requests]
    counts: Counter[int] = Counter()
    for zone, lead_ids in midnights.items():
        local = now.astimezone(ZoneInfo(zone))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        query = (
            sa.select(send_ledger.c.lead_id, sa.func.count())
            .where(
                send_ledger.c.lead_id.in_(lead_ids),
                send_ledger.c.marketing.is_(True),
                send_ledger.c.status.in_(("pending", "sent")),
                send_ledger.c.claimed_at >= midnight.astimezone(UTC),
                send_ledger.c.idempotency_key.not_in(keys),
            )
            .group_by(send_ledger.c.lead_id)
        )
        counts.update({lead_id: count for lead_id, count in connection.execute(query)})
    return counts


def _claim_rows(
    connection: Connection,
    wanted: Sequence[SendRequest],
    *,
    owner: str,
    now: datetime,
    lease: timedelta,
) -> list[Claim]:
    """Insert new ledger rows and take over expired ones; return ours."""
    if not wanted:
        return []
    lease_until = now + lease
    connection.execute(
        insert_ignoring_duplicates(connection, send_ledger),
        [
            {
                "lead_id": request.lead.id,
                "flow": request.flow,
                "step": request.step,
                "channel": request.channel,
                "marketing": request.marketing,
                "idempotency_key": request.idempotency_key,
                "status": "pending",
                "owner": owner,
                "lease_until": lease_until,
                "claimed_at": now,
                "attempts": 1,
            }
            for request in wanted
        ],
    )
    keys = [request.idempotency_key for request in wanted]
    connection.execute(
        sa.update(send_ledger)
        .where(
            send_ledger.c.idempotency_key.in_(keys),
            send_ledger.c.status == "pending",
            send_ledger.c.owner != owner,
            send_ledger.c.lease_until <= now,
        )
        .values(
            owner=owner,
            lease_until=lease_until,
            claimed_at=now,
            attempts=send_ledger.c.attempts + 1,
        )
    )
    owned = connection.execute(
        sa.select(
            send_ledger.c.id, send_ledger.c.idempotency_key, send_ledger.c.attempts
        ).where(
            send_ledger.c.idempotency_key.in_(keys),
            send_ledger.c.status == "pending",
            send_ledger.c.owner == owner,
            send_ledger.c.lease_until == lease_until,
        )
    ).all()
    by_key = {request.idempotency_key: request for request in wanted}
    return [Claim(row.id, by_key[row.idempotency_key], row.attempts) for row in owned]


def _skip(request: SendRequest, reason: SkipReason) -> Skip:
    return Skip(request.lead.id, request.flow, request.step, reason)


def _record_skips(connection: Connection, skipped: list[Skip], at: datetime) -> None:
    """Upsert one row per (lead, flow, step, reason), counting repeats."""
    if not skipped:
        return
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(skips)
    statement = statement.on_conflict_do_update(
        index_elements=[skips.c.lead_id, skips.c.flow, skips.c.step, skips.c.reason],
        set_={"last_at": statement.excluded.last_at, "times": skips.c.times + 1},
    )
    connection.execute(
        statement,
        [
            {
                "lead_id": skip.lead_id,
                "flow": skip.flow,
                "step": skip.step,
                "reason": skip.reason,
                "first_at": at,
                "last_at": at,
                "times": 1,
            }
            for skip in skipped
        ],
    )
