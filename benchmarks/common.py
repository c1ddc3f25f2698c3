"""What the benchmarks share: a rendered project, its settings, a quiet Prefect."""

from __future__ import annotations

import importlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests")]
from dev import QUIET_PREFECT  # noqa: E402 (scripts/ is not a package)

FAKE_LOOPS = Path(__file__).with_name("fake_loops.py")
BUILD = ROOT / "build"
# Rows inserted into a store at a time when a benchmark fills it.
INSERT_CHUNK = 20_000


def render(destination: Path, *data: str, tasks: bool = False) -> Path:
    """Render the working tree's template into ``destination``.

    Args:
        destination: The folder to render into; emptied first.
        data: Answers as ``name=value``.
        tasks: Whether to run the post-copy task (format, commit).
    """
    shutil.rmtree(destination, ignore_errors=True)
    answers = [argument for pair in data for argument in ("--data", pair)]
    if not tasks:
        answers.append("--skip-tasks")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "copier",
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            "HEAD",
            *answers,
            str(ROOT),
            str(destination),
        ],
        check=True,
    )
    return destination


def package_name(project: Path) -> str:
    """The name of the package a render holds."""
    (package,) = (project / "src").iterdir()
    return package.name


def use_project(project: Path, workdir: Path, **settings: str) -> ModuleType:
    """Import a render's package, with its settings pointing into ``workdir``.

    The campaign and content are copied into ``workdir`` (which becomes the
    current folder), the store and outbox live there, and ``settings`` are
    set as environment variables. Returns the package's settings module.
    """
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    shutil.copy(project / "campaign.yaml", workdir / "campaign.yaml")
    shutil.copytree(project / "content", workdir / "content")
    os.chdir(workdir)
    os.environ.update(QUIET_PREFECT)
    os.environ.update(
        DATABASE_URL=f"sqlite:///{workdir / 'campaign.db'}",
        OUTBOX_DIR=str(workdir / "outbox"),
        **settings,
    )
    sys.path.insert(0, str(project / "src"))
    return importlib.import_module(f"{package_name(project)}.settings")


def apply_settings(settings_module: ModuleType, **settings: str) -> None:
    """Change settings between two flow runs of the same process."""
    os.environ.update(settings)
    settings_module.get_settings.cache_clear()


def send_through_fake_loops(
    settings_module: ModuleType, base_url: str, rate: float
) -> None:
    """Point the project's Loops channel at the fake, at ``rate`` a second."""
    apply_settings(
        settings_module,
        EMAIL_BACKEND="loops",
        LOOPS_API_KEY="bench-key",
        LOOPS_TRANSACTIONAL_ID="bench",
        LOOPS_BASE_URL=f"{base_url}/api",
        LOOPS_RATE_PER_SECOND=str(rate),
    )


@contextmanager
def fake_process(script: Path, *arguments: str) -> Iterator[str]:
    """Run a fake service's script in a process of its own (a core of its own).

    The script is given ``--port`` and ``arguments``; this waits until its
    ``/stats`` answers, and yields its base URL.
    """
    from fake_loops import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), *arguments]
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                fake_stats(base_url)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"{script.name} did not start.")
        yield base_url
    finally:
        process.terminate()
        process.wait()


@contextmanager
def fake_loops(rate: int) -> Iterator[str]:
    """Run fake_loops.py in a process of its own; yield its URL.

    Args:
        rate: Requests it accepts per sliding second; 0 for no limit.
    """
    with fake_process(FAKE_LOOPS, "--rate", str(rate)) as base_url:
        yield base_url


def fake_stats(base_url: str) -> dict[str, Any]:
    """The counters a fake answers with at /stats."""
    with urllib.request.urlopen(f"{base_url}/stats", timeout=5) as answer:  # noqa: S310
        result: dict[str, Any] = json.load(answer)
        return result


def reset_fake(base_url: str) -> None:
    """Make the fake forget what it took."""
    request = urllib.request.Request(f"{base_url}/reset", method="POST")  # noqa: S310
    urllib.request.urlopen(request, timeout=5).close()  # noqa: S310


def insert_activities(
    connection: Any,
    stamp: Any,
    *,
    count: int,
    leads: int,
    kinds: dict[str, int],
    oldest: datetime,
    history: timedelta,
    seed: int = 2026,
) -> None:
    """Insert activities with their inbound events, as the receiver would.

    They come in time order over ``history`` from ``oldest``, each from one of
    ``leads`` leads picked at random, of a kind picked by the ``kinds``
    weights. Rows go in a chunk at a time, so the benchmark's memory peak is
    not the filling's.

    Args:
        connection: An open SQLAlchemy connection to the store.
        stamp: The store's own conversion of a time to what it keeps.
    """
    chooser = random.Random(seed)  # noqa: S311 (test data, not secrets)
    step = history / count
    for start in range(0, count, INSERT_CHUNK):
        numbers = range(start, min(start + INSERT_CHUNK, count))
        picked = chooser.choices(
            list(kinds), weights=list(kinds.values()), k=len(numbers)
        )
        events, rows = [], []
        for number, kind in zip(numbers, picked, strict=True):
            email = f"lead{chooser.randrange(leads):06d}@example.com"
            occurred_at = stamp(oldest + step * number)
            event_id = f"evt-{number:09d}"
            payload = f'{{"email": "{email}", "kind": "{kind}"}}'
            events.append((event_id, email, payload, occurred_at))
            rows.append((email, kind, occurred_at, event_id))
        connection.exec_driver_sql(
            "INSERT INTO inbound_events (id, type, lead_email, payload,"
            " occurred_at, received_at, emit_attempts)"
            " VALUES (?, 'lead.activity', ?, ?, ?4, ?4, 0)",
            events,
        )
        connection.exec_driver_sql(
            "INSERT INTO activities (email, kind, occurred_at, event_id)"
            " VALUES (?, ?, ?, ?)",
            rows,
        )
