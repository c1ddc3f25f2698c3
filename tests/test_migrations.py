"""hooks/migrations/rename_answers.py: renaming answers before ``copier update``.

The script runs as Copier runs it: a separate Python process in the project's
folder. It must change only the renamed keys, do nothing the second time, and
refuse rather than lose an answer.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import copier
import pytest
import yaml
from template_repo import ANSWERS_FILE, commit_all, git, init_repo

pytest_plugins = ["template_repo"]
pytestmark = pytest.mark.usefixtures("isolated_env")

SCRIPT_PATH = Path("hooks", "migrations", "rename_answers.py")
EXIT_REFUSED = 1
EXIT_USAGE = 2
SAMPLE = """\
# Changes here will be overwritten by Copier; do not edit by hand.
_commit: 1.0.0
_src_path: gh:acme/copier-prefect-campaigns
author_name: Growth Team
campaign_flows:
- nurture
- scoring
old_name: keep me
# a comment a person added
send_window: 09:00-17:00
"""


@pytest.fixture
def script(template_src: Path) -> Path:
    """The rename script, from the template snapshot."""
    return template_src / SCRIPT_PATH


def run_script(
    script: Path, project: Path, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """Run the rename script in ``project`` the way a Copier migration does."""
    return subprocess.run(
        [sys.executable, str(script), *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )


def write_answers(project: Path, text: str | bytes) -> Path:
    """Write an answers file into ``project`` and return its path."""
    path = project / ANSWERS_FILE
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize(
    ("before", "renames", "after"),
    [
        pytest.param(
            SAMPLE,
            ["old_name=new_name"],
            SAMPLE.replace("old_name:", "new_name:"),
            id="scalar",
        ),
        pytest.param(
            SAMPLE,
            ["campaign_flows=flows"],
            SAMPLE.replace("campaign_flows:", "flows:"),
            id="list",
        ),
        pytest.param(
            SAMPLE,
            ["old_name=new_name", "author_name=maintainer"],
            SAMPLE.replace("old_name:", "new_name:").replace(
                "author_name:", "maintainer:"
            ),
            id="two-renames",
        ),
        pytest.param(
            SAMPLE.replace("\n", "\r\n"),
            ["old_name=new_name"],
            SAMPLE.replace("old_name:", "new_name:").replace("\n", "\r\n"),
            id="crlf",
        ),
        pytest.param(
            "old_name: 'quoted: value'  # why\nlast: x",
            ["old_name=new_name"],
            "new_name: 'quoted: value'  # why\nlast: x",
            id="quoted-value-comment-no-final-newline",
        ),
        pytest.param(
            "'old_name': 1\nold_name_2: 2\n",
            ["old_name=new_name"],
            "new_name: 1\nold_name_2: 2\n",
            id="quoted-key-and-prefix",
        ),
        pytest.param(
            "a: 1\nold_name: |-\n  first\n\n  second\nz: 2\n",
            ["old_name=new_name"],
            "a: 1\nnew_name: |-\n  first\n\n  second\nz: 2\n",
            id="block-scalar",
        ),
    ],
)
def test_renames_only_the_key(
    script: Path, tmp_path: Path, before: str, renames: list[str], after: str
) -> None:
    """The renamed keys change; every other byte stays, in order."""
    path = write_answers(tmp_path, before)

    result = run_script(script, tmp_path, *renames)

    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == after.encode()
    assert "Renamed the answer" in result.stdout


def test_second_run_changes_nothing(script: Path, tmp_path: Path) -> None:
    """Running the same rename again leaves the file as the first run left it."""
    path = write_answers(tmp_path, SAMPLE)
    run_script(script, tmp_path, "old_name=new_name", "campaign_flows=flows")
    once = path.read_bytes()

    result = run_script(script, tmp_path, "old_name=new_name", "campaign_flows=flows")

    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == once
    assert result.stdout.count("already renamed") == 2


def test_missing_old_key_changes_nothing(script: Path, tmp_path: Path) -> None:
    """Without the old key, the file is left alone and the script says so."""
    path = write_answers(tmp_path, SAMPLE)

    result = run_script(script, tmp_path, "no_such_answer=new_name")

    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == SAMPLE.encode()
    assert "No answer named 'no_such_answer': nothing to rename." in result.stdout


def test_refuses_when_new_name_holds_another_value(
    script: Path, tmp_path: Path
) -> None:
    """A new name that already holds a different value stops it; nothing changes."""
    before = SAMPLE + "new_name: something else\n"
    path = write_answers(tmp_path, before)

    result = run_script(script, tmp_path, "author_name=maintainer", "old_name=new_name")

    assert result.returncode == EXIT_REFUSED
    assert path.read_bytes() == before.encode()
    assert "Cannot rename the answer 'old_name' to 'new_name'" in result.stderr
    assert "'something else', not 'keep me'" in result.stderr


def test_drops_old_key_when_new_name_holds_same_value(
    script: Path, tmp_path: Path
) -> None:
    """When both names hold the same value, only the old key goes."""
    path = write_answers(tmp_path, SAMPLE + "flows:\n- nurture\n- scoring\n")

    result = run_script(script, tmp_path, "campaign_flows=flows")

    assert result.returncode == 0, result.stderr
    expected = SAMPLE.replace("campaign_flows:\n- nurture\n- scoring\n", "")
    assert path.read_text() == expected + "flows:\n- nurture\n- scoring\n"


def test_custom_answers_file(script: Path, tmp_path: Path) -> None:
    """--answers-file points it at a project that renamed its answers file."""
    path = tmp_path / ".answers" / "campaigns.yml"
    path.parent.mkdir()
    path.write_text(SAMPLE)

    result = run_script(
        script, tmp_path, "--answers-file", str(path), "old_name=new_name"
    )

    assert result.returncode == 0, result.stderr
    assert path.read_text() == SAMPLE.replace("old_name:", "new_name:")


def test_refuses_without_answers_file(script: Path, tmp_path: Path) -> None:
    """Outside a project, it says where it looked and how to point it elsewhere."""
    result = run_script(script, tmp_path, "old_name=new_name")

    assert result.returncode == EXIT_REFUSED
    assert "No answers file at .copier-answers.yml" in result.stderr
    assert "--answers-file" in result.stderr


@pytest.mark.parametrize(
    "argument",
    [
        pytest.param("old_name", id="no-equals"),
        pytest.param("old_name=", id="no-new-name"),
        pytest.param("old-name=new_name", id="not-an-answer-name"),
        pytest.param("same=same", id="same-name"),
    ],
)
def test_refuses_malformed_argument(
    script: Path, tmp_path: Path, argument: str
) -> None:
    """An argument that is not OLD=NEW with two different names is a usage error."""
    path = write_answers(tmp_path, SAMPLE)

    result = run_script(script, tmp_path, argument)

    assert result.returncode == EXIT_USAGE
    assert repr(argument) in result.stderr
    assert path.read_bytes() == SAMPLE.encode()


# End to end: Copier runs the script as a migration during an update --------

ANSWERS_TEMPLATE = """\
# Changes here will be overwritten by Copier; do not edit by hand.
{{ _copier_answers|to_nice_yaml -}}
"""
V1_CONFIG = """\
_subdirectory: template
old_name:
  type: str
  help: What is it called?
  default: a default
"""
V2_CONFIG = """\
_subdirectory: template
_migrations:
  - version: "2.0.0"
    command:
      - "{{ _copier_python }}"
      - "{{ _copier_conf.src_path }}/hooks/migrations/rename_answers.py"
      - --answers-file
      - "{{ _copier_conf.answers_file }}"
      - old_name=new_name
    when: "{{ _stage == 'before' }}"
new_name:
  type: str
  help: What is it called?
  default: a default
"""


def write_template(template: Path, config: str, readme: str) -> None:
    """Write a tiny template: a config, an answers file and a README."""
    (template / "copier.yml").write_text(config)
    (template / "template").mkdir(exist_ok=True)
    answers = template / "template" / "{{_copier_conf.answers_file}}.jinja"
    answers.write_text(ANSWERS_TEMPLATE)
    (template / "template" / "README.md.jinja").write_text(textwrap.dedent(readme))


@pytest.mark.parametrize(
    ("skip_answered", "answers_file"),
    [
        pytest.param(True, ANSWERS_FILE, id="skip-answered"),
        pytest.param(False, ANSWERS_FILE, id="re-answer"),
        pytest.param(True, "campaign-answers.yml", id="custom-answers-file"),
    ],
)
def test_update_runs_rename_migration(
    script: Path, tmp_path: Path, skip_answered: bool, answers_file: str
) -> None:
    """An update across a renamed question keeps the answer under its new name."""
    template = tmp_path / "template"
    (template / SCRIPT_PATH.parent).mkdir(parents=True)
    (template / SCRIPT_PATH).write_bytes(script.read_bytes())
    write_template(template, V1_CONFIG, "Called {{ old_name }}.\n")
    init_repo(template)
    commit_all(template, "v1")
    git(template, "tag", "1.0.0")
    project = tmp_path / "project"
    copier.run_copy(
        str(template),
        project,
        data={"old_name": "Spring Launch"},
        answers_file=answers_file,
        defaults=True,
        unsafe=True,
        vcs_ref="1.0.0",
        quiet=True,
    )
    init_repo(project)
    commit_all(project, "Render v1")
    write_template(template, V2_CONFIG, "Called {{ new_name }}.\n")
    commit_all(template, "v2: rename old_name to new_name")
    git(template, "tag", "2.0.0")

    copier.run_update(
        project,
        answers_file=answers_file,
        defaults=True,
        overwrite=True,
        unsafe=True,
        skip_answered=skip_answered,
        quiet=True,
    )

    answers = yaml.safe_load((project / answers_file).read_text())
    assert answers["_commit"] == "2.0.0"
    assert answers["new_name"] == "Spring Launch"
    assert "old_name" not in answers
    assert (project / "README.md").read_text() == "Called Spring Launch.\n"
