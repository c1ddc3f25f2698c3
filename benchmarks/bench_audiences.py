"""Syncing 100,000 leads into the four retargeting audiences of a fake Meta.

Renders a project with the retargeting flow, fills its store with leads,
consent, activities and scores, and syncs the audiences to a fake Graph API
running in a process of its own. It reports the time of each part, and the
upload requests each audience took against the minimum, ceil(rows / 10,000).
A second sync with nothing changed must make no request at all.

    python benchmarks/bench_audiences.py [--leads 100000] [--rate 2]

``--project`` reuses a render instead of making one (the fake Meta is this
same file, run with ``--fake``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import math
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
import uvicorn
from common import BUILD, apply_settings, fake_process, fake_stats, render, use_project
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_LEADS = 100_000
MAX_ROWS = 10_000
AD_ACCOUNT = "1234567890"
TOKEN = "bench-token"  # noqa: S105 (the fake takes any token)
NOW = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)
# Shares of the leads that opened an email lately, visited the pricing page,
# are hot, bought, and unsubscribed.
ENGAGED_SHARE = 0.6
HIGH_INTENT_SHARE = 0.2
HOT_SHARE = 0.1
BOUGHT_SHARE = 0.02
SUPPRESSED_SHARE = 0.01
INSERT_CHUNK = 10_000


class FakeMeta:
    """The Graph API's custom audience endpoints, counting what they take."""

    def __init__(self) -> None:
        self.audiences: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.refused = 0
        self.app = Starlette(
            routes=[
                Route(
                    "/{version}/act_{account}/customaudiences",
                    self.customaudiences,
                    methods=["GET", "POST"],
                ),
                Route(
                    "/{version}/{audience_id}/users",
                    self.users,
                    methods=["POST", "DELETE"],
                ),
                Route("/stats", self.stats, methods=["GET"]),
            ]
        )

    async def customaudiences(self, request: Request) -> Response:
        """List the audiences (one page), or create one."""
        self.requests["look-ups"] += 1
        if request.method == "POST":
            body = await request.json()
            audience_id = str(1000 + len(self.audiences))
            self.audiences[audience_id] = body["name"]
            return JSONResponse({"id": audience_id})
        listed = [{"id": key, "name": name} for key, name in self.audiences.items()]
        return JSONResponse({"data": listed, "paging": {"cursors": {}}})

    async def users(self, request: Request) -> Response:
        """Take one batch of an upload; refuse one over Meta's row limit."""
        body = await request.json()
        rows = len(body["payload"]["data"])
        name = self.audiences.get(request.path_params["audience_id"], "?")
        key = f"{name} {'add' if request.method == 'POST' else 'remove'}"
        if rows > MAX_ROWS:
            self.refused += 1
            error = {"error": {"message": "Too many rows", "code": 100}}
            return JSONResponse(error, status_code=400)
        self.requests[key] += 1
        self.rows[key] += rows
        return JSONResponse(
            {"session_id": body["session"]["session_id"], "num_received": rows}
        )

    async def stats(self, request: Request) -> Response:
        """Report requests and rows by audience and action."""
        return JSONResponse(
            {
                "requests": dict(self.requests),
                "rows": dict(self.rows),
                "refused": self.refused,
            }
        )


def fill_store(store_module: ModuleType, store: Any, leads: int) -> None:
    """Add leads with consent, activities, scores, purchases, suppressions."""
    tables = store_module
    recent = NOW - timedelta(days=2)
    emails = [f"lead{number}@example.com" for number in range(leads)]
    with store.transaction() as connection:
        for start in range(0, leads, INSERT_CHUNK):
            chunk = range(start, min(leads, start + INSERT_CHUNK))
            connection.execute(
                sa.insert(tables.leads),
                [
                    {
                        "id": number + 1,
                        "email": emails[number],
                        "source": "bench",
                        "created_at": NOW - timedelta(days=90),
                        "purchased_at": recent
                        if number % int(1 / BOUGHT_SHARE) == 0
                        else None,
                    }
                    for number in chunk
                ],
            )
            connection.execute(
                sa.insert(tables.consents),
                [
                    {"lead_id": number + 1, "granted_at": NOW, "source": "bench"}
                    for number in chunk
                ],
            )
            events = []
            activity_rows = []
            for number in chunk:
                visits: list[tuple[str, str | None]] = []
                if number % 10 < ENGAGED_SHARE * 10:
                    visits.append(("email_open", None))
                if number % 10 < HIGH_INTENT_SHARE * 10:
                    visits.append(("page_visit", "https://acme.test/pricing"))
                for kind, url in visits:
                    event_id = f"{kind}-{number}"
                    events.append(
                        {
                            "id": event_id,
                            "type": kind,
                            "lead_email": emails[number],
                            "payload": {},
                            "occurred_at": recent,
                            "received_at": recent,
                        }
                    )
                    activity_rows.append(
                        {
                            "email": emails[number],
                            "kind": kind,
                            "url": url,
                            "occurred_at": recent,
                            "event_id": event_id,
                        }
                    )
            connection.execute(sa.insert(tables.inbound_events), events)
            connection.execute(sa.insert(tables.activities), activity_rows)
            connection.execute(
                sa.insert(tables.lead_scores),
                [
                    {
                        "email": emails[number],
                        "score": 90,
                        "breakdown": {},
                        "hot": True,
                        "crossings": 1,
                        "computed_at": NOW,
                    }
                    for number in chunk
                    if number % int(1 / HOT_SHARE) == 1
                ],
            )
            connection.execute(
                sa.insert(tables.suppressions),
                [
                    {
                        "email": emails[number],
                        "reason": "unsubscribed",
                        "source": "bench",
                        "created_at": NOW,
                    }
                    for number in chunk
                    if number % int(1 / SUPPRESSED_SHARE) == 3
                ],
            )


async def run_syncs(
    audiences: ModuleType, store: Any, settings: Any, base_url: str
) -> None:
    """Time the parts of a first sync and a second one; print the figures."""
    rules = audiences.AudienceRules()

    started = time.perf_counter()
    wanted = audiences.members(store, rules, NOW)
    members_seconds = time.perf_counter() - started
    started = time.perf_counter()
    audiences.plan_sync(store, wanted)
    plan_seconds = time.perf_counter() - started

    client = audiences.MetaAudiences.from_settings(settings)
    try:
        started = time.perf_counter()
        first = await audiences.sync_audiences(store, client, rules, NOW)
        first_seconds = time.perf_counter() - started
        after_first = fake_stats(base_url)

        started = time.perf_counter()
        second = await audiences.sync_audiences(store, client, rules, NOW)
        second_seconds = time.perf_counter() - started
        after_second = fake_stats(base_url)
    finally:
        await client.aclose()

    print(f"membership queries: {members_seconds:.2f} s")
    print(f"hashing and planning: {plan_seconds:.2f} s")
    print(f"first sync: {first_seconds:.2f} s, error: {first.error}")
    print(f"{'audience':<12} {'rows':>7} {'requests':>8} {'minimum':>7}")
    for name in audiences.AUDIENCE_NAMES:
        key = f"{name} add"
        rows = after_first["rows"].get(key, 0)
        requests = after_first["requests"].get(key, 0)
        minimum = math.ceil(rows / MAX_ROWS)
        print(f"{name:<12} {rows:>7} {requests:>8} {minimum:>7}")
    print(f"look-ups: {after_first['requests'].get('look-ups', 0)}")
    print(f"refused batches: {after_first['refused']}")
    uploads_second = sum(after_second["requests"].values()) - sum(
        after_first["requests"].values()
    )
    print(
        f"second sync: {second_seconds:.2f} s, requests: {uploads_second}, "
        f"reported upload requests: {second.requests}"
    )


def serve_fake(port: int) -> None:
    """Run the fake Meta in this process."""
    uvicorn.run(FakeMeta().app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    """Render, fill the store, sync twice, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=DEFAULT_LEADS)
    parser.add_argument(
        "--rate", type=float, help="META_RATE_PER_SECOND; the project's default"
    )
    parser.add_argument("--project", type=Path, help="a render to reuse")
    parser.add_argument("--fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.fake:
        serve_fake(arguments.port)
        return

    project = arguments.project or render(
        BUILD / "bench-audiences", 'campaign_flows=["retargeting"]'
    )
    settings_module = use_project(project.resolve(), BUILD / "bench-audiences-run")
    package = settings_module.__name__.rsplit(".", 1)[0]
    store_module = importlib.import_module(f"{package}.store")
    audiences = importlib.import_module(f"{package}.audiences")

    with fake_process(Path(__file__), "--fake") as base_url:
        meta_settings = {
            "META_ACCESS_TOKEN": TOKEN,
            "META_AD_ACCOUNT_ID": AD_ACCOUNT,
            "META_BASE_URL": base_url,
        }
        if arguments.rate is not None:
            meta_settings["META_RATE_PER_SECOND"] = str(arguments.rate)
        apply_settings(settings_module, **meta_settings)
        settings = settings_module.get_settings()
        print(f"leads: {arguments.leads}, rate: {settings.meta_rate_per_second}/s")

        store = store_module.Store(settings.database_url)
        started = time.perf_counter()
        fill_store(store_module, store, arguments.leads)
        print(f"filling the store: {time.perf_counter() - started:.2f} s")
        try:
            asyncio.run(run_syncs(audiences, store, settings, base_url))
        finally:
            store.close()


if __name__ == "__main__":
    main()
