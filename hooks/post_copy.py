"""After ``copier copy``: format the project, make its first commit, say what next.

Copier runs this in the new project's folder with its own Python. It reads the
answers from ``.copier-answers.yml`` and uses only the standard library and,
when installed beside Copier, ruff.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS_FILE = Path(".copier-answers.yml")


def read_answers() -> dict[str, str]:
    """Read the flat ``key: value`` answers this hook needs, without PyYAML."""
    answers: dict[str, str] = {}
    for line in ANSWERS_FILE.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition(": ")
        if sep and not line.startswith((" ", "-", "#")):
            answers[key] = value.strip().strip("'\"")
    return answers


def format_project() -> None:
    """Format the Python files with ruff, when ruff is installed beside Copier."""
    if importlib.util.find_spec("ruff") is None:
        print("ruff is not installed beside Copier: skipping the format step.")
        return
    for command in (["check", "--fix-only", "--quiet"], ["format", "--quiet"]):
        subprocess.run([sys.executable, "-m", "ruff", *command, "."], check=False)


def inside_git_repository() -> bool:
    """Tell whether the project folder is already inside a git work tree."""
    result = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "true"


def first_commit(author_name: str, author_email: str) -> None:
    """Initialise a repository and commit the rendered project as it is.

    The commit is the user's own when git knows who they are; otherwise it is
    signed with the project's author from the answers.
    """
    configured = subprocess.run(
        ["git", "config", "user.email"], capture_output=True, check=False
    )
    identity = []
    if configured.returncode != 0:
        identity = [
            "-c",
            f"user.name={author_name}",
            "-c",
            f"user.email={author_email}",
        ]
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], check=True)
    subprocess.run(["git", "add", "--all"], check=True)
    subprocess.run(
        [
            "git",
            *identity,
            "commit",
            "--quiet",
            "--no-verify",
            "-m",
            "Render the project with Copier",
        ],
        check=True,
    )
    print("Initialised a git repository and made the first commit.")


def main() -> int:
    """Run the post-copy steps and print the next ones."""
    answers = read_answers()
    format_project()
    if shutil.which("git") is None:
        print("git is not installed: skipping the first commit.")
    elif inside_git_repository():
        print("The folder is already inside a git repository: not committing.")
    else:
        first_commit(
            answers.get("author_name", "Copier"), answers.get("author_email", "")
        )

    slug = answers.get("project_slug", "the project")
    print(
        "\nNext steps:\n"
        f"  cd {Path.cwd()}\n"
        "  python3 -m venv .venv\n"
        '  .venv/bin/pip install -e ".[dev]"\n'
        f"  .venv/bin/{slug} demo      # a simulated run of the sequence\n"
        "  .venv/bin/pytest           # the project's own tests\n"
        "Then copy .env.example to .env and set the keys of the services you use."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
