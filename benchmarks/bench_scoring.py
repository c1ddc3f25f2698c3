"""Lead scoring's full recompute: 1,000,000 activities of 100,000 leads.

A project with the scoring flow is rendered and its SQLite store filled the
way the receiver fills it (an inbound event per activity), with activities
spread at random over the last 16 weeks and arriving in time order, not lead
by lead. Then `rescore_all` runs three times: the first run, where every lead
is new and many cross the threshold; a run a week later, where points fade
and some leads cool down; and that run again under tracemalloc, for the peak
of Python's allocations (tracemalloc slows it down, so it is not timed). The
process's peak resident size is read before and after the recompute runs.
Last, the incremental path: `rescore` of one lead at a time.

The aim: each timed run well under a minute, memory in tens of MB.

    python benchmarks/bench_scoring.py [--activities 1000000] [--leads 100000]
"""

from __future__ import annotations

import argparse
import importlib
import random
import resource
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from common import BUILD, insert_activities, render, use_project

DEFAULT_ACTIVITIES = 1_000_000
DEFAULT_LEADS = 100_000
SINGLE_LEAD_RUNS = 200
HISTORY = timedelta(weeks=16)
NOW = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)
# The sample scoring section of the questionnaire's defaults.
SCORING = {
    "hot_threshold": 80,
    "cap": 100,
    "weekly_decay_percent": 10,
    "rules": {
        "email_open": {"points": 5, "repeatable": True, "cap": 20},
        "link_click": {"points": 10, "repeatable": True, "cap": 30},
        "page_visit": {"points": 15, "repeatable": True, "cap": 45},
        "form_submission": {"points": 25, "repeatable": True, "cap": 50},
        "purchase": {"points": 50, "repeatable": False},
    },
}
# How often each kind happens, roughly: opens most, purchases least.
KIND_WEIGHTS = {
    "email_open": 50,
    "link_click": 20,
    "page_visit": 20,
    "form_submission": 8,
    "purchase": 2,
}


def fill_store(store: Any, activities: int, leads: int) -> float:
    """Insert the activities and their events in chunks; return the seconds.

    Activities come in time order over ``HISTORY``, each from a lead picked at
    random, as they would reach the receiver. Nothing is kept but one chunk,
    so that filling does not set the process's peak memory.
    """
    store_module = importlib.import_module(type(store).__module__)
    # The column's own conversion, so the rows read back exactly as stored ones.
    stamp = store_module.activities.c.occurred_at.type.bind_processor(
        store.engine.dialect
    )
    started = time.perf_counter()
    with store.engine.begin() as connection:
        insert_activities(
            connection,
            stamp,
            count=activities,
            leads=leads,
            kinds=KIND_WEIGHTS,
            oldest=NOW - HISTORY,
            history=HISTORY,
        )
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    """The process's peak resident size so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_rescore_all(scoring: Any, store: Any, config: Any, now: datetime) -> str:
    """Run the full recompute once; describe its time and counts."""
    started = time.perf_counter()
    report = scoring.rescore_all(store, config, now)
    elapsed = time.perf_counter() - started
    return (
        f"{elapsed:.1f} s, {report.leads_scored} leads, {report.crossings} "
        f"crossed, {report.cooled} cooled, {report.hot} hot"
    )


def main() -> None:
    """Fill the store, run the recomputes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=DEFAULT_ACTIVITIES)
    parser.add_argument("--leads", type=int, default=DEFAULT_LEADS)
    arguments = parser.parse_args()

    project = render(
        BUILD / "bench-scoring-project", 'campaign_flows=["nurture", "scoring"]'
    )
    workdir = BUILD / "bench-scoring"
    settings_module = use_project(project.resolve(), workdir)
    package = settings_module.__name__.rsplit(".", 1)[0]
    scoring: Any = importlib.import_module(f"{package}.scoring")
    store_module: Any = importlib.import_module(f"{package}.store")
    store = store_module.Store(f"sqlite:///{workdir / 'campaign.db'}")
    config = scoring.ScoringConfig.model_validate(SCORING)

    filling = fill_store(store, arguments.activities, arguments.leads)
    size = (workdir / "campaign.db").stat().st_size / 1e6
    rss_before = peak_rss_mb()
    first = timed_rescore_all(scoring, store, config, NOW)
    week_later = NOW + timedelta(weeks=1)
    second = timed_rescore_all(scoring, store, config, week_later)
    rss_after = peak_rss_mb()

    tracemalloc.start()
    scoring.rescore_all(store, config, week_later)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    chooser = random.Random(7)  # noqa: S311 (test data, not secrets)
    single: list[float] = []
    for _ in range(SINGLE_LEAD_RUNS):
        email = f"lead{chooser.randrange(arguments.leads):06d}@example.com"
        started = time.perf_counter()
        scoring.rescore(store, [email], config, week_later)
        single.append(time.perf_counter() - started)

    print(
        f"store:            {arguments.activities} activities of {arguments.leads} "
        f"leads, filled in {filling:.1f} s, {size:.0f} MB"
    )
    print(f"rescore_all:      first run {first}")
    print(f"rescore_all:      a week later {second}")
    print(f"tracemalloc peak: {traced_peak / 1e6:.1f} MB during a full recompute")
    print(
        f"ru_maxrss:        {rss_before:.0f} MB before the recomputes, "
        f"{rss_after:.0f} MB after"
    )
    print(
        f"rescore one lead: median {statistics.median(single) * 1000:.1f} ms, "
        f"max {max(single) * 1000:.1f} ms over {SINGLE_LEAD_RUNS} leads"
    )


if __name__ == "__main__":
    main()
