"""Run the template's demo, tests and benchmarks with nothing but Python and git.

    python3 scripts/dev.py demo    render the default project and run its demo
    python3 scripts/dev.py test    run the template's tests (what CI runs)
    python3 scripts/dev.py bench   run the benchmarks (by hand, not in CI)
    python3 scripts/dev.py lock    rewrite constraints.txt (with the oldest Python)

The first run makes .venv/ and installs the dependency groups of
pyproject.toml, pinned by constraints.txt; later runs reuse it until either
file changes. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
CONSTRAINTS = ROOT / "constraints.txt"
DEMO_PROJECT = ROOT / "build" / "demo-project"
QUIET_PREFECT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def requirements(*groups: str) -> list[str]:
    """Resolve dependency groups of pyproject.toml, includes and all."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    resolved: list[str] = []

    def add(group: str) -> None:
        for entry in declared[group]:
            if isinstance(entry, dict):
                add(entry["include-group"])
            elif entry not in resolved:
                resolved.append(entry)

    for group in groups:
        add(group)
    return resolved


def venv_bin(name: str) -> Path:
    """The path of a command inside .venv."""
    folder = "Scripts" if os.name == "nt" else "bin"
    return VENV / folder / name


def ensure_environment(*groups: str) -> None:
    """Create .venv and install the groups, unless it already has them."""
    wanted = requirements(*groups)
    stamp = VENV / f".installed-{'-'.join(groups)}"
    fingerprint = hashlib.sha256(
        "\n".join([*wanted, CONSTRAINTS.read_text()]).encode()
    ).hexdigest()
    if stamp.is_file() and stamp.read_text() == fingerprint:
        return
    if not venv_bin("python").exists():
        print(f"Creating {VENV.relative_to(ROOT)} ...", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"Installing the {', '.join(groups)} dependencies ...", flush=True)
    pip = [str(venv_bin("python")), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run(
        [*pip, "install", "--quiet", "-c", str(CONSTRAINTS), *wanted], check=True
    )
    stamp.write_text(fingerprint)


def demo() -> int:
    """Render the default project into build/, install it, and run its demo."""
    ensure_environment("copier")
    shutil.rmtree(DEMO_PROJECT, ignore_errors=True)
    subprocess.run(
        [
            str(venv_bin("copier")),
            "copy",
            "--trust",
            "--defaults",
            "--quiet",
            "--vcs-ref",
            "HEAD",
            str(ROOT),
            str(DEMO_PROJECT),
        ],
        check=True,
    )
    print("Installing the rendered project ...", flush=True)
    subprocess.run(
        [
            str(venv_bin("python")),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(CONSTRAINTS),
            "-e",
            str(DEMO_PROJECT),
        ],
        check=True,
    )
    slug = tomllib.loads((DEMO_PROJECT / "pyproject.toml").read_text())["project"][
        "name"
    ]
    print(f"Running `{slug} demo` in {DEMO_PROJECT.relative_to(ROOT)} ...", flush=True)
    return subprocess.run(
        [str(venv_bin(slug)), "demo"],
        cwd=DEMO_PROJECT,
        env={**os.environ, **QUIET_PREFECT},
        check=False,
    ).returncode


def test(pytest_args: list[str]) -> int:
    """Run the template's test suite."""
    ensure_environment("test")
    return subprocess.run(
        [str(venv_bin("python")), "-m", "pytest", *pytest_args],
        cwd=ROOT,
        env={**os.environ, **QUIET_PREFECT},
        check=False,
    ).returncode


def bench(names: list[str]) -> int:
    """Run the benchmarks in benchmarks/, all or those named."""
    ensure_environment("test")
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    chosen = [s for s in scripts if not names or s.stem.removeprefix("bench_") in names]
    for script in chosen:
        print(f"== {script.name}", flush=True)
        subprocess.run(
            [str(venv_bin("python")), str(script)],
            cwd=ROOT,
            env={**os.environ, **QUIET_PREFECT},
            check=True,
        )
    return 0


def lock() -> int:
    """Install every group into a scratch environment and pin what it got.

    Run it with the oldest Python the template supports: a pin that installs
    there (some releases need a newer 3.11.x) installs on every later one.
    """
    scratch = ROOT / "build" / "lock-venv"
    shutil.rmtree(scratch, ignore_errors=True)
    venv.create(scratch, with_pip=True)
    python = str(scratch / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", *requirements("test")], check=True
    )
    frozen = subprocess.run(
        [python, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    CONSTRAINTS.write_text(
        "# Pinned by `python3 scripts/dev.py lock`; do not edit by hand.\n" + frozen
    )
    shutil.rmtree(scratch)
    return 0


def main() -> int:
    """Parse the command line and run the chosen job."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="render the default project and run its demo")
    commands.add_parser(
        "test", help="run the template's tests (pytest options pass through)"
    )
    bench_parser = commands.add_parser("bench", help="run the benchmarks")
    bench_parser.add_argument("names", nargs="*")
    commands.add_parser("lock", help="rewrite constraints.txt")
    arguments, pytest_args = parser.parse_known_args()
    if pytest_args and arguments.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(pytest_args)}")

    if arguments.command == "demo":
        return demo()
    if arguments.command == "test":
        return test(pytest_args)
    if arguments.command == "bench":
        return bench(arguments.names)
    return lock()


if __name__ == "__main__":
    sys.exit(main())
