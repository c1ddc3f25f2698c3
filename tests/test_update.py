"""``copier update`` from one template tag to the next, over a team's own edits.

A project is rendered from tag 1.0.0 (post-copy task included, which makes its
first commit), the team edits its copy and its campaign, and the template moves
on to 1.1.0. The update must keep the team's edits, bring the template's, and
never leave a conflict unnoticed: Copier exits 0 even with conflicts, so the
checks here are the ones the generated project's CI runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import copier
import pytest
from template_repo import (
    commit_all,
    git,
    make_template_repo,
    read_answers,
    render,
)

pytest_plugins = ["template_repo"]
pytestmark = pytest.mark.usefixtures("isolated_env")

CONFLICT_MARKER = b"<<<<<<< "
USER_PARAGRAPH = "\nP.S. Reply with the one question you would ask first.\n"
USER_SENDER = "Dana at Growth Lab"
TEMPLATE_CAMPAIGN_NOTE = "# Checked by `campaign check` before every run (1.1.0).\n"
TEMPLATE_README_SECTION = "\n## Updating\n\nRun `copier update` from a clean tree.\n"
TEMPLATE_IGNORED = "coverage-report/\n"
TEMPLATE_CONTENT_LINE = "\nA line the 1.1.0 template adds to the email.\n"


@dataclass
class Setup:
    """A template repository and a project rendered from its tag 1.0.0."""

    template: Path
    project: Path


def replace_once(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in ``path`` with ``new``."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"expected {old!r} once in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def append(path: Path, text: str) -> None:
    """Append ``text`` to ``path``."""
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


def content_template(template: Path, slug: str) -> Path:
    """The template file that renders ``content/<slug>.md``."""
    matches = sorted((template / "template" / "content").glob(f"*{slug}.md*"))
    assert len(matches) == 1, f"expected one template for content/{slug}.md"
    return matches[0]


def conflicted(project: Path) -> list[str]:
    """Paths git records as unmerged after the update."""
    return git(project, "diff", "--name-only", "--diff-filter=U").split()


def files_with_markers(project: Path) -> list[str]:
    """Paths outside .git with a line that opens a conflict."""
    return sorted(
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file()
        and ".git" not in path.relative_to(project).parts
        and any(
            line.startswith(CONFLICT_MARKER) for line in path.read_bytes().splitlines()
        )
    )


def rejected(project: Path) -> list[str]:
    """Patch rejects left behind."""
    return sorted(path.name for path in project.rglob("*.rej"))


@pytest.fixture
def setup(template_src: Path, tmp_path: Path) -> Setup:
    """Render tag 1.0.0 and make the team's edits: a P.S. and a sender name."""
    template = make_template_repo(tmp_path / "template", root=template_src)
    git(template, "tag", "1.0.0")
    project = render(template, tmp_path / "project", vcs_ref="1.0.0", skip_tasks=False)
    assert git(project, "status", "--porcelain") == "", "the first commit is partial"

    author = read_answers(project)["author_name"]
    append(project / "content" / "backstory.md", USER_PARAGRAPH)
    replace_once(
        project / "campaign.yaml", f"  name: {author}\n", f"  name: {USER_SENDER}\n"
    )
    commit_all(project, "Our own P.S. and sender name")
    return Setup(template, project)


def release(template: Path, version: str) -> None:
    """Commit the template's changes and tag them."""
    commit_all(template, f"Release {version}")
    git(template, "tag", version)


def update(project: Path) -> None:
    """Update the project to the latest tag, as a non-interactive user would."""
    copier.run_update(
        project,
        defaults=True,
        overwrite=True,
        unsafe=True,
        skip_answered=True,
        quiet=True,
    )


def test_update_keeps_edits_and_brings_template_changes(setup: Setup) -> None:
    """Edits the template does not touch survive; the template's changes arrive."""
    source = setup.template / "template"
    append(source / ".gitignore", TEMPLATE_IGNORED)
    append(source / "README.md.jinja", TEMPLATE_README_SECTION)
    campaign = source / "campaign.yaml.jinja"
    campaign.write_text(
        TEMPLATE_CAMPAIGN_NOTE + campaign.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    append(content_template(setup.template, "backstory"), TEMPLATE_CONTENT_LINE)
    release(setup.template, "1.1.0")

    update(setup.project)

    project = setup.project
    assert read_answers(project)["_commit"] == "1.1.0"
    assert (project / ".gitignore").read_text().endswith(TEMPLATE_IGNORED)
    assert (project / "README.md").read_text().endswith(TEMPLATE_README_SECTION)
    campaign_text = (project / "campaign.yaml").read_text()
    assert campaign_text.startswith(TEMPLATE_CAMPAIGN_NOTE)
    assert f"  name: {USER_SENDER}\n" in campaign_text
    backstory = (project / "content" / "backstory.md").read_text()
    assert backstory.endswith(USER_PARAGRAPH)
    assert TEMPLATE_CONTENT_LINE not in backstory
    assert conflicted(project) == []
    assert files_with_markers(project) == []
    assert rejected(project) == []


def test_conflicting_template_change_is_detected(setup: Setup) -> None:
    """A template change to the line the team edited is a conflict the checks see."""
    replace_once(
        setup.template / "template" / "campaign.yaml.jinja",
        "  name: {{ author_name }}\n",
        "  name: {{ author_name }} at {{ project_name }}\n",
    )
    release(setup.template, "1.1.0")

    update(setup.project)

    project = setup.project
    assert read_answers(project)["_commit"] == "1.1.0"
    assert conflicted(project) == ["campaign.yaml"]
    assert files_with_markers(project) == ["campaign.yaml"]
    campaign_text = (project / "campaign.yaml").read_text()
    assert f"  name: {USER_SENDER}\n" in campaign_text
    assert (project / "content" / "backstory.md").read_text().endswith(USER_PARAGRAPH)
