"""Time to render the default project with `copier copy`, tasks included.

Runs the command a user runs (`copier copy --trust --defaults`), so the
questionnaire's validators, the context hook and the post-copy task (ruff,
`git init`, the first commit) are all in the figure.

    python benchmarks/bench_render.py [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import render

DEFAULT_RUNS = 5


def render_once(destination: Path) -> float:
    """Render the defaults into ``destination``; return the seconds it took."""
    started = time.perf_counter()
    render(destination, tasks=True)
    return time.perf_counter() - started


def main() -> None:
    """Render several times and print the median and the spread."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    arguments = parser.parse_args()

    timings = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(arguments.runs):
            destination = Path(scratch) / f"project-{run}"
            timings.append(render_once(destination))
            shutil.rmtree(destination)
    print(
        f"render with tasks: median {statistics.median(timings):.2f} s, "
        f"min {min(timings):.2f} s, max {max(timings):.2f} s "
        f"over {arguments.runs} runs"
    )


if __name__ == "__main__":
    main()
