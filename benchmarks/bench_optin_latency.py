"""Time from a signed opt-in to the first email in the outbox, p50 and p95.

Starts `prefect server start` on 127.0.0.1, then a project's `serve` and
`receive`, each a process of its own (tests/live.py), and posts signed
opt-ins one after another; for each, the time until its first email is in the
outbox. The path: receiver, store, Prefect event, trigger, served flow run,
outbox. With `--flow funnel` (the default) the project has the funnel and the
first email is the confirmation; with `--flow nurture`, the sequence's first.

    python benchmarks/bench_optin_latency.py [--opt-ins 50] [--flow funnel]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import BUILD, render
from live import post_signed, running_project, wait_for_files

DEFAULT_OPT_INS = 50
SECRET = "benchmark-secret"  # noqa: S105 (the benchmark's own receiver)
EMAIL_WAIT_SECONDS = 60
# The first email's outbox file for the n-th lead, by the flow that sends it.
FIRST_EMAIL = {
    "funnel": "*.funnel.confirm-1.{number}.eml",
    "nurture": "*.nurture.call-to-action.{number}.eml",
}


def main() -> None:
    """Post the opt-ins and print the latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt-ins", type=int, default=DEFAULT_OPT_INS)
    parser.add_argument("--flow", choices=sorted(FIRST_EMAIL), default="funnel")
    arguments = parser.parse_args()

    flows = '["nurture", "funnel"]' if arguments.flow == "funnel" else '["nurture"]'
    project = render(BUILD / "bench-latency", f"campaign_flows={flows}").resolve()
    logs = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    latencies: list[float] = []
    with running_project(project, SECRET, logs) as running:
        for number in range(1, arguments.opt_ins + 1):
            started = time.perf_counter()
            post_signed(
                f"{running.receiver_url}/events",
                SECRET,
                {
                    "id": f"bench-{number}",
                    "type": "lead.opted_in",
                    "data": {"email": f"lead{number}@example.com", "source": "bench"},
                },
            ).raise_for_status()
            pattern = FIRST_EMAIL[arguments.flow].format(number=number)
            if not wait_for_files(project / "outbox", pattern, EMAIL_WAIT_SECONDS):
                raise SystemExit(f"No first email for opt-in {number}; logs in {logs}.")
            latencies.append(time.perf_counter() - started)

    cuts = statistics.quantiles(latencies, n=20)
    print(
        f"opt-ins:  {len(latencies)}, one after another, first email: {arguments.flow}"
    )
    print(
        f"latency:  p50 {statistics.median(latencies):.2f} s, p95 {cuts[18]:.2f} s, "
        f"min {min(latencies):.2f} s, max {max(latencies):.2f} s (aim: p50 under 2 s)"
    )


if __name__ == "__main__":
    main()
