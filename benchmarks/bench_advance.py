"""The nurture tick for 1,000 leads against a fake Loops that allows 10 a second.

1,000 leads are enrolled (their first email goes to the outbox), then one
`advance` run a day later sends each the second email through the project's
Loops channel to fake_loops.py, in a process of its own, which refuses with a
429 any request over 10 in a sliding second. The figures: the rate the fake
accepted over its limit (the aim: at least 0.95) and the requests it refused
(the aim: none).

    python benchmarks/bench_advance.py [--leads 1000] [--rate 10]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from common import (
    BUILD,
    fake_loops,
    fake_stats,
    render,
    send_through_fake_loops,
    use_project,
)

DEFAULT_LEADS = 1000
DEFAULT_RATE = 10
# A Monday inside the default send window (09:00-17:00 UTC).
OPT_IN = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)


def main() -> None:
    """Run the tick and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=DEFAULT_LEADS)
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE)
    arguments = parser.parse_args()

    project = render(BUILD / "bench-project")
    settings_module = use_project(
        project.resolve(), BUILD / "bench-advance", EMAIL_BACKEND="outbox"
    )
    package = settings_module.__name__.rsplit(".", 1)[0]
    nurture: Any = importlib.import_module(f"{package}.flows.nurture")
    leads_module: Any = importlib.import_module(f"{package}.leads")

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    leads = [
        leads_module.NewLead(email=f"lead{number}@example.com", first_name="Sam")
        for number in range(arguments.leads)
    ]
    with (
        fake_loops(arguments.rate) as base_url,
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        asyncio.run(nurture.enroll(leads, source="bench", now=OPT_IN))
        send_through_fake_loops(settings_module, base_url, arguments.rate)
        started = time.perf_counter()
        counts = asyncio.run(nurture.advance(now=OPT_IN + timedelta(days=1)))
        elapsed = time.perf_counter() - started
        stats = fake_stats(base_url)

    span = float(stats["last_at"]) - float(stats["first_at"])
    achieved = (int(stats["accepted"]) - 1) / span
    print(f"leads:            {arguments.leads}, limit {arguments.rate} requests/s")
    print(f"advance run:      {elapsed:.1f} s, {counts}")
    print(f"fake Loops:       {stats['accepted']} accepted, {stats['refused']} refused")
    print(f"busiest second:   {stats['busiest_second']} requests")
    print(
        f"achieved / limit: {achieved:.3f} / {arguments.rate} = "
        f"{achieved / arguments.rate:.3f} (aim: at least 0.95)"
    )


if __name__ == "__main__":
    main()
