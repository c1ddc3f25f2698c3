"""The marketing ETL over one million activity rows: time and peak memory.

A project with the nurture sequence and the ETL is rendered, and its SQLite
store filled as a busy campaign would fill it: 100,000 leads with their
consent and enrollment, seven emails each for most of them (about 600,000
ledger rows), one million opens, clicks and visits over twelve weeks, with
their inbound events, some unsubscribes and 2,000 purchases. Then each stage
runs on its own and is timed:

- extract and load: the store into a new warehouse, every row;
- a second load with nothing new (what a daily run mostly is);
- transform: the funnel, each email, the cohorts and the checks;
- report: the HTML dashboard and the Markdown summary.

The process's peak resident size (which counts DuckDB's own memory, unlike
tracemalloc) is read before the ETL and after each stage.

    python benchmarks/bench_etl.py [--activities 1000000] [--leads 100000]
"""

from __future__ import annotations

import argparse
import importlib
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from common import BUILD, INSERT_CHUNK, insert_activities, render, use_project

DEFAULT_ACTIVITIES = 1_000_000
DEFAULT_LEADS = 100_000
HISTORY = timedelta(weeks=12)
NOW = datetime(2026, 4, 6, 10, 0, tzinfo=UTC)
KINDS = {"email_open": 60, "link_click": 25, "page_visit": 15}


def fill_store(store: Any, activities: int, leads: int, steps: list[str]) -> float:
    """Fill the store with leads, emails and activities; return the seconds."""
    store_module = importlib.import_module(type(store).__module__)
    stamp = store_module.activities.c.occurred_at.type.bind_processor(
        store.engine.dialect
    )
    chooser = random.Random(2026)  # noqa: S311 (test data, not secrets)
    oldest = NOW - HISTORY
    started = time.perf_counter()
    with store.engine.begin() as connection:
        for start in range(0, leads, INSERT_CHUNK):
            numbers = range(start, min(start + INSERT_CHUNK, leads))
            lead_rows, consent_rows, enrollment_rows, email_rows = [], [], [], []
            for number in numbers:
                lead_id = number + 1
                opted = oldest + HISTORY * (number / leads)
                lead_rows.append(
                    (lead_id, f"lead{number:06d}@example.com", stamp(opted))
                )
                consent_rows.append((lead_id, stamp(opted)))
                enrollment_rows.append((lead_id, stamp(opted)))
                for day, step in enumerate(steps):
                    sent = opted + timedelta(days=day)
                    if sent > NOW:
                        break
                    email_rows.append(
                        (lead_id, step, f"bench.nurture.{step}.{lead_id}", stamp(sent))
                    )
            connection.exec_driver_sql(
                "INSERT INTO leads (id, email, source, created_at)"
                " VALUES (?, ?, 'bench', ?)",
                lead_rows,
            )
            connection.exec_driver_sql(
                "INSERT INTO consents (lead_id, granted_at, source)"
                " VALUES (?, ?, 'bench')",
                consent_rows,
            )
            connection.exec_driver_sql(
                "INSERT INTO enrollments (lead_id, flow, enrolled_at, status)"
                " VALUES (?, 'nurture', ?, 'active')",
                enrollment_rows,
            )
            connection.exec_driver_sql(
                "INSERT INTO send_ledger (lead_id, flow, step, channel, marketing,"
                " idempotency_key, status, owner, lease_until, claimed_at,"
                " attempts, sent_at)"
                " VALUES (?, 'nurture', ?, 'outbox', 1, ?, 'sent', 'bench', ?4, ?4,"
                " 1, ?4)",
                email_rows,
            )
        insert_activities(
            connection,
            stamp,
            count=activities,
            leads=leads,
            kinds=KINDS,
            oldest=oldest,
            history=HISTORY,
        )
        buyers = chooser.sample(range(leads), k=min(2_000, leads))
        for number in buyers:
            email = f"lead{number:06d}@example.com"
            bought = stamp(NOW - timedelta(days=chooser.randrange(60)))
            connection.exec_driver_sql(
                "INSERT INTO inbound_events (id, type, lead_email, payload,"
                " occurred_at, received_at, emit_attempts)"
                " VALUES (?, 'lead.purchased', ?, ?, ?4, ?4, 0)",
                (
                    f"buy-{number}",
                    email,
                    f'{{"email": "{email}", "amount": 97}}',
                    bought,
                ),
            )
            connection.exec_driver_sql(
                "UPDATE leads SET purchased_at = ? WHERE email = ?", (bought, email)
            )
        for number in chooser.sample(range(leads), k=min(1_500, leads)):
            connection.exec_driver_sql(
                "INSERT INTO suppressions (email, reason, source, created_at)"
                " VALUES (?, 'unsubscribed', 'bench', ?)",
                (
                    f"lead{number:06d}@example.com",
                    stamp(NOW - timedelta(days=chooser.randrange(80))),
                ),
            )
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    """The process's peak resident size so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Fill the store, run each stage of the ETL, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=DEFAULT_ACTIVITIES)
    parser.add_argument("--leads", type=int, default=DEFAULT_LEADS)
    arguments = parser.parse_args()

    project = render(BUILD / "bench-etl-project", 'campaign_flows=["nurture", "etl"]')
    workdir = BUILD / "bench-etl"
    settings_module = use_project(project.resolve(), workdir)
    package = settings_module.__name__.rsplit(".", 1)[0]
    modules: dict[str, Any] = {
        name: importlib.import_module(f"{package}.{name}")
        for name in ("store", "warehouse", "performance", "report", "campaign")
    }
    store_source: Any = importlib.import_module(f"{package}.sources.store")
    store = modules["store"].Store(f"sqlite:///{workdir / 'campaign.db'}")
    campaign = yaml.safe_load((project / "campaign.yaml").read_text())
    steps = [step["slug"] for step in campaign["nurture"]["steps"]]
    filling = fill_store(store, arguments.activities, arguments.leads, steps)
    with store.engine.connect() as connection:
        rows = {
            table: connection.exec_driver_sql(
                f"SELECT count(*) FROM {table}"  # noqa: S608 (the benchmark's names)
            ).scalar()
            for table in ("leads", "send_ledger", "activities", "inbound_events")
        }
    checks = modules["campaign"].Checks()
    rss = {"before the ETL": peak_rss_mb()}
    timings: dict[str, float] = {}

    warehouse = modules["warehouse"].Warehouse(workdir / "warehouse.duckdb")
    started = time.perf_counter()
    loaded = store_source.load_store(store.engine, warehouse, at=NOW)
    timings["extract and load"] = time.perf_counter() - started
    rss["after extract and load"] = peak_rss_mb()

    started = time.perf_counter()
    store_source.load_store(store.engine, warehouse, at=NOW + timedelta(days=1))
    timings["a second load, nothing new"] = time.perf_counter() - started

    started = time.perf_counter()
    performance = modules["performance"].measure(
        warehouse, checks, daily_cap=1, time_zone="UTC", now=NOW
    )
    timings["transform and checks"] = time.perf_counter() - started
    rss["after transform"] = peak_rss_mb()

    started = time.perf_counter()
    path = modules["report"].write_report(
        performance,
        project="Bench",
        folder=workdir / "reports",
        now=NOW,
        sources={"store": "loaded"},
        keep=1,
    )
    modules["report"].summary_markdown(
        performance, now=NOW, sources={"store": "loaded"}
    )
    timings["report"] = time.perf_counter() - started
    rss["after the report"] = peak_rss_mb()
    warehouse.close()

    print(
        f"store:     {rows['leads']} leads, {rows['send_ledger']} emails, "
        f"{rows['activities']} activities, {rows['inbound_events']} events; "
        f"filled in {filling:.1f} s"
    )
    print(f"loaded:    {sum(loaded.values())} rows into the warehouse")
    for stage, seconds in timings.items():
        print(f"{stage + ':':<28}{seconds:6.1f} s")
    first_run = sum(timings.values()) - timings["a second load, nothing new"]
    print(f"{'total, first run:':<28}{first_run:6.1f} s")
    for moment, megabytes in rss.items():
        print(f"peak RSS {moment + ':':<24}{megabytes:6.0f} MB")
    print(f"report:    {path.stat().st_size / 1e6:.1f} MB, {path}")
    print(
        "funnel:    "
        + ", ".join(f"{stage.key} {stage.leads}" for stage in performance.funnel)
    )
    print(f"anomalies: {len(performance.anomalies)}")


if __name__ == "__main__":
    main()
