"""Step 0 for 10,000 leads: `leads import` against a plain asyncio + httpx script.

Both send the same 10,000 transactional requests, with the same concurrency,
to the fake Loops (no rate limit) running in a process of its own. The import
reads the CSV file and runs the enroll flow once per thousand leads, as a
user's `leads import` does; each run stores its leads, their consent and
enrollment, claims and marks each ledger row, and renders each email. The
script only sends. The figure is the import's wall time over the script's
(the aim: at most 1.5).

    python benchmarks/bench_step0.py [--leads 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from common import (
    BUILD,
    fake_loops,
    fake_stats,
    render,
    reset_fake,
    send_through_fake_loops,
    use_project,
)

DEFAULT_LEADS = 10_000
NO_LIMIT = 1_000_000
FLOW_START = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)


async def plain_script(base_url: str, leads: int, concurrency: int, body: str) -> float:
    """Send ``leads`` transactional requests the simplest way; return seconds."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:

        async def send(number: int) -> None:
            async with gate:
                answer = await client.post(
                    "/api/v1/transactional",
                    json={
                        "transactionalId": "bench",
                        "email": f"lead{number}@example.com",
                        "dataVariables": {"bodyHtml": body, "bodyText": body},
                    },
                    headers={
                        "Authorization": "Bearer bench-key",
                        "Idempotency-Key": f"plain.{number}",
                    },
                )
                answer.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(send(number) for number in range(leads)))
        return time.perf_counter() - started


def main() -> None:
    """Run both, print both times and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=DEFAULT_LEADS)
    arguments = parser.parse_args()

    project = render(BUILD / "bench-project")
    settings_module = use_project(
        project.resolve(),
        BUILD / "bench-step0",
        EMAIL_BACKEND="outbox",
    )
    package = settings_module.__name__.rsplit(".", 1)[0]
    nurture: Any = importlib.import_module(f"{package}.flows.nurture")
    cli: Any = importlib.import_module(f"{package}.cli")
    flows_at_once = nurture.BATCHES_AT_ONCE
    concurrency = flows_at_once * settings_module.Settings().send_concurrency

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with (
        fake_loops(0) as base_url,
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        # Start Prefect's temporary server before anything is timed.
        asyncio.run(nurture.advance(now=FLOW_START))
        # No limit at the fake: the limiter is set far above what can be sent.
        send_through_fake_loops(settings_module, base_url, NO_LIMIT)
        signups = Path("signups.csv")
        signups.write_text(
            "email,first_name\n"
            + "".join(f"lead{n}@example.com,Sam\n" for n in range(arguments.leads))
        )
        started = time.perf_counter()
        result = CliRunner().invoke(cli.cli, ["leads", "import", str(signups)])
        flow_seconds = time.perf_counter() - started
        if result.exit_code != 0:
            raise SystemExit(result.output)
        flow_stats = fake_stats(base_url)
        reset_fake(base_url)
        body = "x" * 2500
        script_seconds = asyncio.run(
            plain_script(base_url, arguments.leads, concurrency, body)
        )
        script_stats = fake_stats(base_url)

    print(f"leads:              {arguments.leads}, {concurrency} requests in flight")
    print(f"leads import:       {flow_seconds:.2f} s, {result.output.strip()}")
    print(f"fake Loops took:    {flow_stats['accepted']} from the import")
    print(
        f"plain httpx script: {script_seconds:.2f} s, {script_stats['accepted']} taken"
    )
    print(f"import / script:    {flow_seconds / script_seconds:.2f} (aim: at most 1.5)")


if __name__ == "__main__":
    main()
