"""The project's public endpoints: unsubscribe links and the signed receiver.

``/events`` takes signed posts from forms and sites (see ``webhooks.py``);
accepted events go on to Prefect in the background (see ``emitter.py``).

An unsubscribe link carries a token signed for one lead (see ``messages.sign_lead``), so
nobody can unsubscribe someone else by guessing. Opening the link shows a page
with a button; the button, and a mail client's RFC 8058 one-click request,
POST to the same address. Link checkers that only open links unsubscribe
nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from html import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from .emitter import EventEmitter
from .messages import token_matches
from .runtime import link_secret
from .settings import Settings
from .store import Lead, Store
from .webhooks import events_endpoint

ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:32rem;margin:4rem auto;">
<h1>{title}</h1>{body}</body></html>
"""


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app: unsubscribe links, the receiver, its emitter."""
    store = Store(settings.database_url)
    secret = link_secret(settings, store)
    emitter = EventEmitter.from_settings(settings, store)

    def find_lead(token: str) -> Lead | None:
        lead_id, _, _ = token.partition(".")
        if not lead_id.isdigit():
            return None
        lead = store.lead_by_id(int(lead_id))
        if lead is None or not token_matches(token, lead, secret):
            return None
        return lead

    async def unsubscribe(request: Request) -> HTMLResponse:
        lead = await asyncio.to_thread(find_lead, request.path_params["token"])
        if lead is None:
            body = (
                "<p>This unsubscribe link is not valid. Use the link from the "
                "latest email, or reply to it and ask to be removed.</p>"
            )
            return HTMLResponse(PAGE.format(title="Link not valid", body=body), 404)
        if request.method == "GET":
            body = (
                f"<p>Stop all marketing email to <b>{escape(lead.email)}</b>?</p>"
                '<form method="post"><button type="submit">Unsubscribe</button></form>'
            )
            return HTMLResponse(PAGE.format(title="Unsubscribe", body=body))
        source = "one-click" if await request.body() == ONE_CLICK_BODY else "link"
        await asyncio.to_thread(
            store.suppress,
            lead.email,
            reason="unsubscribed",
            source=source,
            at=datetime.now(UTC),
        )
        body = "<p>You will get no more marketing email from us.</p>"
        return HTMLResponse(PAGE.format(title="You are unsubscribed", body=body))

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        emitting = asyncio.create_task(emitter.run())
        try:
            yield
        finally:
            emitting.cancel()
            await emitter.aclose()
            store.close()

    return Starlette(
        routes=[
            Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
            Route(
                "/events",
                events_endpoint(settings, store, on_accept=emitter.wake),
                methods=["POST"],
            ),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
