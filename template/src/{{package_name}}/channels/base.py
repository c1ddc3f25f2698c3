"""What every channel sends and answers: the message types and protocols."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal, Protocol

AlertLevel = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One rendered marketing email, ready for any email channel.

    ``idempotency_key`` comes from the send ledger row and is the same on every
    attempt of this send, so a provider can drop a repeat; ``message_id`` is
    built from it for channels that only have headers to go on.
    """

    to: str
    from_name: str
    from_address: str
    subject: str
    html: str
    text: str
    idempotency_key: str
    message_id: str
    unsubscribe_url: str
    date: datetime
    reply_to: str | None = None
    variables: Mapping[str, str | int] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        """Return the headers that mark a marketing email (RFC 2369, RFC 8058)."""
        return {
            "List-Unsubscribe": f"<{self.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }

    def to_mime(self) -> EmailMessage:
        """Build the MIME message: a plain-text part and an HTML alternative."""
        message = EmailMessage()
        message["Subject"] = self.subject
        message["From"] = Address(self.from_name, addr_spec=self.from_address)
        message["To"] = self.to
        if self.reply_to:
            message["Reply-To"] = self.reply_to
        message["Date"] = format_datetime(self.date)
        message["Message-ID"] = self.message_id
        for name, value in self.headers().items():
            message[name] = value
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """What a channel reports after a send.

    ``duplicate`` is true when the channel found that this very message had
    already gone out (the same idempotency key or Message-ID): nothing new was
    sent, and the ledger can mark the send done.
    """

    provider_id: str | None = None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Alert:
    """A short notice for the team: a failed run, a daily summary."""

    title: str
    text: str
    level: AlertLevel = "info"
    fields: Mapping[str, str] = field(default_factory=dict)


class EmailChannel(Protocol):
    """Sends one email at a time; safe to call concurrently."""

    name: str

    async def send(self, email: OutgoingEmail) -> SendReceipt:
        """Send ``email`` or raise ``ApiError``, ``DeliveryRejected`` or
        ``CircuitOpenError``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class AlertChannel(Protocol):
    """Posts alerts for the team."""

    name: str

    async def post(self, alert: Alert) -> None:
        """Post ``alert`` or raise ``ApiError``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
