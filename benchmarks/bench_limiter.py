"""How close a rendered project's HTTP layer gets to Loops' rate limit.

Sends 1,000 transactional emails through the project's ``LoopsChannel``, from
many concurrent callers, to ``fake_loops.py`` started in this process with
Loops' limit of 10 requests per sliding second. Prints the rate the fake
accepted as a share of the limit, the busiest second, and how many requests
it refused with 429. The goal: at least 95 % of the limit and no refusals.

    python benchmarks/bench_limiter.py --project /tmp/a-render

Without ``--project`` it renders the template's defaults into
``build/bench-project`` first. At the defaults it takes about 105 s.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import BUILD, render
from fake_loops import FakeLoops, serve_in_thread
from pydantic import SecretStr

DEFAULT_PROJECT = BUILD / "bench-project"
DEFAULT_SENDS = 1000
DEFAULT_RATE = 10
DEFAULT_CONCURRENCY = 50
TRANSACTIONAL_ID = "bench-carrier"


@dataclass(frozen=True)
class Outcome:
    """What the sends came to, from the client's side."""

    sent: int
    duplicates: int
    failed: dict[str, int]
    retries: int
    elapsed: float


class RetryCounter(logging.Handler):
    """Counts the retries the HTTP layer logs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying in" in record.getMessage():
            self.count += 1


def find_package(project: Path) -> str:
    """Return the name of the project's package: the one with a Loops channel."""
    found = sorted(
        path.parents[1].name for path in project.glob("src/*/channels/loops.py")
    )
    if len(found) != 1:
        msg = (
            f"Expected one package with channels/loops.py under {project / 'src'}, "
            f"found {found!r}: render the project with email_provider=loops."
        )
        raise SystemExit(msg)
    return found[0]


async def send_all(
    package: str, base_url: str, *, sends: int, rate: int, concurrency: int
) -> Outcome:
    """Send ``sends`` emails through the project's Loops channel."""
    settings_module: Any = importlib.import_module(f"{package}.settings")
    loops_module: Any = importlib.import_module(f"{package}.channels.loops")
    base_module: Any = importlib.import_module(f"{package}.channels.base")
    errors_module: Any = importlib.import_module(f"{package}.errors")
    campaign_error: type[Exception] = errors_module.CampaignError

    settings = settings_module.Settings(
        loops_api_key=SecretStr("bench-key"),
        loops_base_url=f"{base_url}/api",
        loops_transactional_id=TRANSACTIONAL_ID,
        loops_rate_per_second=float(rate),
    )
    channel: Any = loops_module.LoopsChannel.from_settings(settings)
    counter = RetryCounter()
    logging.getLogger(f"{package}.http").addHandler(counter)
    gate = asyncio.Semaphore(concurrency)
    failed: dict[str, int] = {}

    async def send_one(number: int) -> bool:
        email = base_module.OutgoingEmail(
            to=f"lead{number}@example.com",
            from_name="Bench",
            from_address="bench@example.com",
            subject=f"Bench email {number}",
            html=f"<p>Email {number}</p>",
            text=f"Email {number}",
            idempotency_key=f"bench:{number}",
            message_id=f"<bench-{number}@example.com>",
            unsubscribe_url=f"https://example.com/unsubscribe/{number}",
            date=datetime.now(UTC),
        )
        async with gate:
            try:
                receipt = await channel.send(email)
            except campaign_error as exc:
                name = type(exc).__name__
                failed[name] = failed.get(name, 0) + 1
                return False
        return bool(receipt.duplicate)

    started = time.monotonic()
    try:
        duplicates = await asyncio.gather(*(send_one(n) for n in range(sends)))
    finally:
        await channel.aclose()
    elapsed = time.monotonic() - started

    failures = sum(failed.values())
    return Outcome(
        sent=sends - failures - sum(duplicates),
        duplicates=sum(duplicates),
        failed=failed,
        retries=counter.count,
        elapsed=elapsed,
    )


def fetch_stats(base_url: str) -> dict[str, Any]:
    """Read the fake's counters."""
    with urllib.request.urlopen(f"{base_url}/stats", timeout=10) as answer:  # noqa: S310 (a local http URL)
        stats: dict[str, Any] = json.load(answer)
        return stats


def report(outcome: Outcome, stats: dict[str, Any], *, sends: int, rate: int) -> None:
    """Print the figures."""
    accepted = int(stats["accepted"])
    span = float(stats["last_at"]) - float(stats["first_at"])
    achieved = (accepted - 1) / span if span > 0 else float("nan")
    failed = ", ".join(f"{name} {count}" for name, count in outcome.failed.items())
    print(f"sends:           {sends} from many concurrent callers")
    print(
        f"client:          {outcome.sent} sent, {outcome.duplicates} duplicates, "
        f"{sum(outcome.failed.values())} failed{f' ({failed})' if failed else ''}, "
        f"{outcome.retries} retries, {outcome.elapsed:.1f} s"
    )
    print(f"fake Loops:      {accepted} accepted, {stats['refused']} refused with 429")
    print(
        f"achieved rate:   {achieved:.3f} requests/s = {achieved / rate:.1%} of "
        f"the {rate} requests/s limit"
    )
    print(f"busiest second:  {stats['busiest_second']} requests (limit {rate})")


def main() -> None:
    """Run the benchmark with the options given on the command line."""
    parser = argparse.ArgumentParser(description="Loops rate-limit benchmark")
    parser.add_argument("--project", type=Path, help="a rendered project (Loops)")
    parser.add_argument("--sends", type=int, default=DEFAULT_SENDS)
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    arguments = parser.parse_args()

    project: Path = arguments.project or render(DEFAULT_PROJECT)
    sys.path.insert(0, str(project.resolve() / "src"))
    package = find_package(project)

    fake = FakeLoops(arguments.rate)
    with serve_in_thread(fake) as base_url:
        outcome = asyncio.run(
            send_all(
                package,
                base_url,
                sends=arguments.sends,
                rate=arguments.rate,
                concurrency=arguments.concurrency,
            )
        )
        stats = fetch_stats(base_url)

    report(outcome, stats, sends=arguments.sends, rate=arguments.rate)


if __name__ == "__main__":
    main()
