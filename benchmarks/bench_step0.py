"""Step 0 for 10,000 leads: the enroll flow against a plain asyncio + httpx script.

Both send the same 10,000 transactional requests, with the same concurrency,
to the fake Loops (no rate limit) running in a process of its own. The flow
also stores each lead, its consent and enrollment, claims and marks each
ledger row, and renders each email; the script only sends. The figure is the
flow's wall time over the script's (the aim: at most 1.5).

    python benchmarks/bench_step0.py [--leads 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from common import BUILD, apply_settings, render, use_project
from fake_loops import free_port

FAKE_LOOPS = Path(__file__).with_name("fake_loops.py")
DEFAULT_LEADS = 10_000
FLOW_START = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)


def start_fake() -> tuple[subprocess.Popen[bytes], str]:
    """Start the fake Loops with no limit in its own process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(FAKE_LOOPS), "--port", str(port), "--rate", "0"]
    )
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            stats(base_url)
        except OSError:
            time.sleep(0.05)
        else:
            return process, base_url
    process.kill()
    raise SystemExit("The fake Loops did not start.")


def stats(base_url: str) -> dict[str, Any]:
    """The fake's counters."""
    with urllib.request.urlopen(f"{base_url}/stats", timeout=5) as answer:  # noqa: S310
        result: dict[str, Any] = json.load(answer)
        return result


def reset(base_url: str) -> None:
    """Make the fake forget what it took."""
    request = urllib.request.Request(f"{base_url}/reset", method="POST")  # noqa: S310
    urllib.request.urlopen(request, timeout=5).close()  # noqa: S310


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
    leads_module: Any = importlib.import_module(f"{package}.leads")
    flows_at_once = nurture.BATCHES_AT_ONCE
    concurrency = flows_at_once * settings_module.Settings().send_concurrency

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    fake, base_url = start_fake()
    try:
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            # Start Prefect's temporary server before anything is timed.
            asyncio.run(nurture.advance(now=FLOW_START))
            apply_settings(
                settings_module,
                EMAIL_BACKEND="loops",
                LOOPS_API_KEY="bench-key",
                LOOPS_TRANSACTIONAL_ID="bench",
                LOOPS_BASE_URL=f"{base_url}/api",
                LOOPS_RATE_PER_SECOND="1000000",
            )
            leads = [
                leads_module.NewLead(email=f"lead{number}@example.com", first_name="Sam")
                for number in range(arguments.leads)
            ]
            started = time.perf_counter()
            counts = asyncio.run(nurture.enroll(leads, source="bench", now=FLOW_START))
            flow_seconds = time.perf_counter() - started
        flow_stats = stats(base_url)
        reset(base_url)
        body = "x" * 2500
        script_seconds = asyncio.run(
            plain_script(base_url, arguments.leads, concurrency, body)
        )
        script_stats = stats(base_url)
    finally:
        fake.terminate()
        fake.wait()

    print(f"leads:              {arguments.leads}, {concurrency} requests in flight")
    print(f"enroll flow:        {flow_seconds:.2f} s, {counts}")
    print(f"fake Loops took:    {flow_stats['accepted']} from the flow")
    print(f"plain httpx script: {script_seconds:.2f} s, {script_stats['accepted']} taken")
    print(f"flow / script:      {flow_seconds / script_seconds:.2f} (aim: at most 1.5)")


if __name__ == "__main__":
    main()
