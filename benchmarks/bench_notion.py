"""How close a rendered project's Notion CRM gets to Notion's rate limit.

A project with the scoring flow and ``crm=notion`` is rendered, and a CRM sync
runs the way its flows run one: ``crm_for`` picks the ``NotionCrm`` from
campaign.yaml and the settings, ``check()`` reads the database and its data
source, and ``sync_contacts`` upserts the contacts (a look-up, then a new
page, for each). The contacts are made up rather than read from the store.
The requests go to fake_notion.py, in a process of its own so that the
client's event loop does not disturb the fake's clock, which refuses with 429
``rate_limited`` and ``Retry-After`` any request over 3 in a sliding second.
The client runs at the default ``NOTION_RATE_PER_SECOND`` of 3.

The figures: the rate the fake saw as a share of the limit, the busiest
second, and the requests it refused. The aim, from the issue: under 3 requests
a second while using nearly all of it, and no 429.

    python benchmarks/bench_notion.py [--contacts 100]

At the defaults, about 200 requests and 70 s.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import BUILD, fake_stats, render, use_project
from fake_loops import free_port

DEFAULT_CONTACTS = 100
# Notion's published limit, which the fake enforces.
NOTION_LIMIT = 3
FAKE_NOTION = Path(__file__).with_name("fake_notion.py")
STARTUP_ATTEMPTS = 200
STARTUP_POLL_SECONDS = 0.05
NOW = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)
STATUSES = ("subscribed", "pending", "hot", "customer")


class RetryCounter(logging.Handler):
    """Counts the retries the project's HTTP layer logs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying in" in record.getMessage():
            self.count += 1


@contextmanager
def fake_notion(rate: int) -> Iterator[str]:
    """Run fake_notion.py in a process of its own; yield its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(FAKE_NOTION), "--port", str(port), "--rate", str(rate)]
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(STARTUP_ATTEMPTS):
            try:
                fake_stats(base_url)
                break
            except OSError:
                time.sleep(STARTUP_POLL_SECONDS)
        else:
            raise SystemExit(f"The fake Notion on port {port} did not start.")
        yield base_url
    finally:
        process.terminate()
        process.wait()


def make_contacts(count: int, crm_module: Any) -> list[Any]:
    """Contacts with every mapped field filled, a few statuses and scores."""
    return [
        crm_module.Contact(
            email=f"lead{number}@example.com",
            first_name=f"Lead {number}",
            status=STATUSES[number % len(STATUSES)],
            score=number % 101,
            source="import:bench.csv",
            signed_up_at=NOW - timedelta(hours=number),
        )
        for number in range(count)
    ]


async def sync(package: str, contacts: int, retries: RetryCounter) -> tuple[Any, float]:
    """Check the Notion CRM and sync the contacts; return the report and seconds."""
    settings_module: Any = importlib.import_module(f"{package}.settings")
    campaign_module: Any = importlib.import_module(f"{package}.campaign")
    crm_module: Any = importlib.import_module(f"{package}.crm")
    store_module: Any = importlib.import_module(f"{package}.store")
    notion_module: Any = importlib.import_module(f"{package}.channels.notion")
    logging.getLogger(f"{package}.http").addHandler(retries)

    settings = settings_module.get_settings()
    campaign = campaign_module.load_campaign(settings.campaign_file)
    store = store_module.Store(settings.database_url)
    crm = crm_module.crm_for(settings, campaign.crm, store)
    if not isinstance(crm, notion_module.NotionCrm):
        msg = f"crm_for gave {crm!r}, not the Notion CRM: check NOTION_TOKEN."
        raise SystemExit(msg)

    started = time.perf_counter()
    try:
        await crm.check()
        report = await crm_module.sync_contacts(
            store, crm, make_contacts(contacts, crm_module), now=NOW
        )
    finally:
        await crm.aclose()
        store.close()
    return report, time.perf_counter() - started


def tightest_window(arrivals: list[float], limit: int) -> float:
    """Return the shortest span from a request to the ``limit``-th after it.

    Under 1 s means a sliding second held more than ``limit`` requests; the
    amount over 1 s is the slack the client left.
    """
    spans = [
        arrivals[index + limit] - arrivals[index]
        for index in range(len(arrivals) - limit)
    ]
    return min(spans, default=float("inf"))


def print_figures(
    stats: dict[str, Any], report: Any, elapsed: float, retries: int
) -> None:
    """Print what the client did and what the fake saw."""
    log = [(float(at), str(route), int(code)) for at, route, code in stats["log"]]
    first_at = float(stats["first_at"])
    span = float(stats["last_at"]) - first_at
    requests = int(stats["requests"])
    achieved = (requests - 1) / span if span > 0 else float("nan")
    tightest = tightest_window([at for at, _, _ in log], NOTION_LIMIT)
    routes = ", ".join(f"{count} {name}" for name, count in stats["by_route"].items())
    refusals = [
        f"{at - first_at:.2f} s ({route})" for at, route, code in log if code == 429
    ]

    print(f"sync:            {report.counts()}, {retries} retries")
    print(f"requests:        {requests} ({routes})")
    print(f"elapsed:         {elapsed:.1f} s for the check and the sync")
    print(
        f"achieved rate:   {achieved:.3f} requests/s from first to last arrival "
        f"= {achieved / NOTION_LIMIT:.1%} of the {NOTION_LIMIT}/s limit"
    )
    print(f"busiest second:  {stats['busiest_second']} requests (limit {NOTION_LIMIT})")
    print(
        f"closest {NOTION_LIMIT + 1}:       {NOTION_LIMIT + 1} requests in "
        f"{tightest:.3f} s at the closest (a 429 takes under 1 s)"
    )
    print(f"refused:         {stats['refused']} with 429 rate_limited (aim: none)")
    if refusals:
        print(f"refused at:      {', '.join(refusals[:5])}")


def main() -> None:
    """Run the sync against the fake and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=DEFAULT_CONTACTS)
    arguments = parser.parse_args()

    project = render(
        BUILD / "bench-notion", 'campaign_flows=["nurture","scoring"]', "crm=notion"
    )
    retries = RetryCounter()
    with fake_notion(NOTION_LIMIT) as base_url:
        settings_module = use_project(
            project.resolve(),
            BUILD / "bench-notion-run",
            NOTION_TOKEN="ntn_bench_token",  # noqa: S106 (the fake's own token)
            NOTION_BASE_URL=base_url,
        )
        package = settings_module.__name__.rsplit(".", 1)[0]
        rate = settings_module.get_settings().notion_rate_per_second
        report, elapsed = asyncio.run(sync(package, arguments.contacts, retries))
        stats = fake_stats(base_url)

    print(f"contacts:        {arguments.contacts}, NOTION_RATE_PER_SECOND={rate:g}")
    print_figures(stats, report, elapsed, retries.count)


if __name__ == "__main__":
    main()
