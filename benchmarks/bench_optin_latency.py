"""Time from a signed opt-in to the first email in the outbox, p50 and p95.

Starts `prefect server start` on 127.0.0.1, then the default project's
`serve` and `receive`, each a process of its own, and posts signed opt-ins one
after another; for each, the time until its first email is in the outbox. The
path: receiver, store, Prefect event, trigger, served tick, outbox.

    python benchmarks/bench_optin_latency.py [--opt-ins 50]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import BUILD, render
from dev import QUIET_PREFECT
from fake_loops import free_port

DEFAULT_OPT_INS = 50
SECRET = "benchmark-secret"  # noqa: S105 (the benchmark's own receiver)
STARTUP_SECONDS = 120
EMAIL_WAIT_SECONDS = 60


def wait_for(url: str) -> None:
    """Wait until ``url`` answers."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.5)
        else:
            return
    raise SystemExit(f"{url} did not come up.")


def wait_for_trigger(api_url: str) -> None:
    """Wait until `serve` has registered the opt-in trigger."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        automations = httpx.post(f"{api_url}/automations/filter", json={}).json()
        if any("lead.opted_in" in a["trigger"].get("expect", []) for a in automations):
            return
        time.sleep(0.5)
    raise SystemExit("serve did not register the opt-in trigger.")


def post_opt_in(url: str, number: int) -> None:
    """Sign and post the opt-in of lead ``number``."""
    body = json.dumps(
        {
            "id": f"bench-{number}",
            "type": "lead.opted_in",
            "data": {"email": f"lead{number}@example.com", "source": "benchmark"},
        }
    ).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    answer = httpx.post(
        url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Campaign-Timestamp": timestamp,
            "X-Campaign-Signature": f"v1={digest}",
        },
    )
    answer.raise_for_status()


def main() -> None:
    """Post the opt-ins and print the latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt-ins", type=int, default=DEFAULT_OPT_INS)
    arguments = parser.parse_args()

    project = render(BUILD / "bench-latency").resolve()
    package = next((project / "src").iterdir()).name
    api_port, receiver_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}/api"
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    home = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    env = {**os.environ, **QUIET_PREFECT, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    project_env = {
        **env,
        "PREFECT_API_URL": api_url,
        "PYTHONPATH": str(project / "src"),
        "WEBHOOK_SECRET": SECRET,
    }
    commands = [
        ([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
          "--port", str(api_port)], env),
        ([sys.executable, "-m", package, "serve"], project_env),
        ([sys.executable, "-m", package, "receive", "--port", str(receiver_port)],
         project_env),
    ]  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []
    latencies: list[float] = []
    try:
        for number, (command, command_env) in enumerate(commands):
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=project,
                    env=command_env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            if number == 0:
                wait_for(f"{api_url}/health")
        wait_for(f"{receiver_url}/healthz")
        wait_for_trigger(api_url)

        outbox = project / "outbox"
        for number in range(1, arguments.opt_ins + 1):
            started = time.perf_counter()
            post_opt_in(f"{receiver_url}/events", number)
            while time.perf_counter() - started < EMAIL_WAIT_SECONDS:
                if list(outbox.glob(f"*.call-to-action.{number}.eml")):
                    latencies.append(time.perf_counter() - started)
                    break
                time.sleep(0.02)
            else:
                raise SystemExit(f"No first email for opt-in {number} in {outbox}.")
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)

    cuts = statistics.quantiles(latencies, n=20)
    print(f"opt-ins:  {len(latencies)}, one after another")
    print(
        f"latency:  p50 {statistics.median(latencies):.2f} s, p95 {cuts[18]:.2f} s, "
        f"min {min(latencies):.2f} s, max {max(latencies):.2f} s (aim: p50 under 2 s)"
    )


if __name__ == "__main__":
    main()
