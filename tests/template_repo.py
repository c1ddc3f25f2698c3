"""Shared helpers for the template's tests: a throwaway git copy of the template.

Tests never render from the working tree itself, which others may be editing:
they render from a fresh git repository holding a snapshot of the template's
tracked and untracked-but-not-ignored files. Test modules load the fixtures
here with ``pytest_plugins = ["template_repo"]`` after importing its helpers,
too late for pytest to rewrite its asserts, hence PYTEST_DONT_REWRITE.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import copier
import pytest
import yaml

ROOT = Path(__file__).parents[1]
# What Copier needs from the template repository, and .gitignore, so that the
# bytecode of the extensions Copier imports does not make the copy dirty.
TEMPLATE_PARTS = (".gitignore", "copier.yml", "extensions", "hooks", "template")
ANSWERS_FILE = ".copier-answers.yml"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "template-tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "template-tests@example.com",
}


def git(repo: Path, *args: str) -> str:
    """Run a git command in ``repo`` and return its standard output."""
    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return result.stdout


def template_files(root: Path = ROOT) -> list[Path]:
    """List the template's tracked and untracked-not-ignored files under ``root``."""
    listing = git(
        root,
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
        "--",
        *TEMPLATE_PARTS,
    )
    relative_paths = sorted({Path(name) for name in listing.split("\0") if name})
    return [
        path
        for path in relative_paths
        if (root / path).is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
    ]


def init_repo(repo: Path) -> None:
    """Make ``repo`` a git repository on branch ``main``."""
    git(repo, "init", "--quiet", "--initial-branch=main")


def commit_all(repo: Path, message: str) -> None:
    """Stage everything in ``repo`` and commit it."""
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)


def make_template_repo(destination: Path, root: Path = ROOT) -> Path:
    """Copy the template into ``destination`` as a fresh git repository, committed.

    Returns:
        The absolute path of the new repository, ready to be a Copier source.
    """
    destination.mkdir(parents=True, exist_ok=True)
    for relative_path in template_files(root):
        target = destination / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative_path, target)
    init_repo(destination)
    commit_all(destination, "Snapshot the template for a test")
    return destination.resolve()


def render(
    src: Path,
    dst: Path,
    data: dict[str, Any] | None = None,
    *,
    skip_tasks: bool = True,
    vcs_ref: str = "HEAD",
) -> Path:
    """Render the template at ``src`` into ``dst`` without asking anything."""
    copier.run_copy(
        str(src),
        dst,
        data=data or {},
        defaults=True,
        unsafe=True,
        vcs_ref=vcs_ref,
        skip_tasks=skip_tasks,
        quiet=True,
    )
    return dst


def read_answers(project: Path) -> dict[str, Any]:
    """Load the project's ``.copier-answers.yml`` as a mapping."""
    answers = yaml.safe_load((project / ANSWERS_FILE).read_text(encoding="utf-8"))
    assert isinstance(answers, dict), f"{ANSWERS_FILE} is not a mapping: {answers!r}"
    return answers


def load_questions(template: Path) -> dict[str, dict[str, Any]]:
    """Return the template's questions, by name, in the order Copier asks them."""
    config = yaml.safe_load((template / "copier.yml").read_text(encoding="utf-8"))
    return {
        name: details if isinstance(details, dict) else {"default": details}
        for name, details in config.items()
        if not name.startswith("_")
    }


def load_filters(template: Path) -> ModuleType:
    """Import the template's extensions/filters.py by path: it is not a package."""
    path = template / "extensions" / "filters.py"
    spec = importlib.util.spec_from_file_location("campaign_filters", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot import the filters from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Give git a fixed identity and keep Copier and Prefect off the user's files."""
    home = tmp_path_factory.mktemp("isolated-env")
    copier_settings = home / "copier-settings.yml"
    copier_settings.write_text("defaults: {}\ntrust: []\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in GIT_IDENTITY.items():
            patch.setenv(name, value)
        patch.setenv("COPIER_SETTINGS_PATH", str(copier_settings))
        patch.setenv("PREFECT_HOME", str(home / "prefect"))
        patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        patch.setenv("DO_NOT_TRACK", "1")
        patch.delenv("GIT_DIR", raising=False)
        patch.delenv("GIT_WORK_TREE", raising=False)
        yield


@pytest.fixture(scope="session")
def template_src(tmp_path_factory: pytest.TempPathFactory, isolated_env: None) -> Path:
    """A committed snapshot of the template, shared by the whole session."""
    return make_template_repo(tmp_path_factory.mktemp("template-src"))


@pytest.fixture(scope="session")
def default_project(
    tmp_path_factory: pytest.TempPathFactory, template_src: Path
) -> Path:
    """The project rendered from the template with every default answer."""
    return render(template_src, tmp_path_factory.mktemp("default-project") / "project")
