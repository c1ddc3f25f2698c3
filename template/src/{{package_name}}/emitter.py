"""Pass accepted inbound events on to Prefect, where triggers start flows.

The receiver stores each event before it answers the sender; this module then
posts stored events to the Prefect API (``POST /api/events``), oldest first,
and records each one as emitted only once Prefect has taken it. An event that
could not be posted (no ``PREFECT_API_URL``, the server down) stays in the
store and goes out on the next try: nothing the receiver accepted is lost.

Events name the lead by a tag, not by address, and carry only the inbound
event's id: flows read the rest from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prefect.settings import get_current_settings

from . import PROJECT
from .errors import ApiError, CircuitOpenError
from .http import ApiClient
from .leads import lead_tag
from .settings import Settings
from .store import Store, StoredEvent

logger = logging.getLogger(__name__)

EVENTS_PER_POST = 100
RETRY_EVERY_SECONDS = 10.0
# Prefect event ids are UUIDs: each inbound event gets the same one on every
# try, so a server that already took it can tell.
EVENT_NAMESPACE = uuid.UUID("6f1c1a2e-8d5b-4f53-9a1e-2b7c0d4e5f60")


def prefect_event(stored: StoredEvent) -> dict[str, Any]:
    """The Prefect event for a stored inbound event."""
    tag = lead_tag(stored.lead_email)
    return {
        "id": str(uuid.uuid5(EVENT_NAMESPACE, f"{PROJECT}:{stored.id}")),
        "occurred": stored.occurred_at.isoformat(),
        "event": stored.type,
        "resource": {
            "prefect.resource.id": f"{PROJECT}.lead.{tag}",
            "prefect.resource.name": f"lead {tag}",
        },
        "payload": {"event_id": stored.id},
    }


class EventEmitter:
    """Posts stored events to Prefect; ``run()`` keeps doing it until stopped.

    Args:
        store: The store the receiver writes to.
        client: A client for the Prefect API, or ``None`` when no
            ``PREFECT_API_URL`` is set (events then wait in the store).
    """

    def __init__(self, store: Store, client: ApiClient | None) -> None:
        self.store = store
        self.client = client
        self._wake = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> EventEmitter:
        """Build the emitter for the Prefect API that Prefect's settings name."""
        api = get_current_settings().api
        if api.url is None:
            logger.warning(
                "PREFECT_API_URL is not set: accepted events wait in the store "
                "until it is, and the scheduled tick picks up new leads."
            )
            return cls(store, None)
        headers = {}
        if api.key is not None:
            headers["Authorization"] = f"Bearer {api.key.get_secret_value()}"
        client = ApiClient.from_settings(
            "prefect",
            settings,
            base_url=api.url,
            rate_per_second=settings.prefect_events_rate_per_second,
            headers=headers,
        )
        return cls(store, client)

    def wake(self) -> None:
        """Ask ``run()`` to emit now rather than at its next round."""
        self._wake.set()

    async def emit_pending(self) -> int:
        """Post every stored event not yet emitted; return how many went out."""
        if self.client is None:
            return 0
        emitted = 0
        while batch := await asyncio.to_thread(
            self.store.events_to_emit, EVENTS_PER_POST
        ):
            if not await self._post(batch):
                break
            emitted += len(batch)
        return emitted

    async def _post(self, batch: Sequence[StoredEvent]) -> bool:
        assert self.client is not None
        ids = [stored.id for stored in batch]
        try:
            await self.client.request(
                "POST", "/events", json=[prefect_event(stored) for stored in batch]
            )
        except (ApiError, CircuitOpenError) as exc:
            logger.warning(
                "%d events could not reach Prefect and wait for the next try: %s",
                len(batch),
                exc,
            )
            await asyncio.to_thread(
                self.store.record_emission, ids, at=datetime.now(UTC), error=str(exc)
            )
            return False
        await asyncio.to_thread(self.store.record_emission, ids, at=datetime.now(UTC))
        return True

    async def run(self) -> None:
        """Emit whenever woken, and every ``RETRY_EVERY_SECONDS`` regardless."""
        while True:
            await self.emit_pending()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RETRY_EVERY_SECONDS)
            self._wake.clear()

    async def aclose(self) -> None:
        """Release the Prefect API client."""
        if self.client is not None:
            await self.client.aclose()
