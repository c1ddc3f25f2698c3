"""What the benchmarks share: a rendered project, its settings, a quiet Prefect."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
QUIET_PREFECT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def render(destination: Path, *data: str) -> Path:
    """Render the working tree's template into ``destination``, tasks skipped."""
    shutil.rmtree(destination, ignore_errors=True)
    answers = [argument for pair in data for argument in ("--data", pair)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "copier",
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            "--skip-tasks",
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
