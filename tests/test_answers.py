"""The rendered ``.copier-answers.yml``: every answer, and never a secret.

``copier update`` replays the answers file, so it must hold the answer to every
question that was asked; it is committed to the project's repository, so it
must hold nothing secret. Secrets live in the project's ``.env`` or in Prefect
``Secret`` blocks, and rendering must not copy them from the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment
from template_repo import (
    ANSWERS_FILE,
    load_filters,
    load_questions,
    read_answers,
    render,
)

pytest_plugins = ["template_repo"]
pytestmark = pytest.mark.usefixtures("isolated_env")

SECRET_NAME = re.compile(
    r"api[_-]?key|password|passwd|secret|token|webhook|credential|private[_-]?key",
    re.IGNORECASE,
)
# Values a marketer might have exported in the shell that runs Copier.
SECRET_ENVIRONMENT = {
    "LOOPS_API_KEY": "sk_test_123_loops_never_rendered",
    "SMTP_PASSWORD": "smtp-password-never-rendered",
    "NOTION_TOKEN": "secret_notion_token_never_rendered",
    "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/never-rendered",
    "META_ACCESS_TOKEN": "EAAG-meta-token-never-rendered",
    "X_API_KEY": "x-api-key-never-rendered",
    "LINKEDIN_ACCESS_TOKEN": "linkedin-token-never-rendered",
}
FALSE_WORDS = {"", "0", "false", "f", "no", "n", "off", "none", "null", "~"}


@pytest.fixture(scope="module")
def when_environment(template_src: Path) -> Environment:
    """A Jinja environment with the template's filters, to evaluate ``when``."""
    filters = load_filters(template_src)
    # Copier renders without HTML escaping, and so must this, to agree with it.
    return Environment(extensions=[filters.CampaignFilters])  # noqa: S701


def asked(
    details: dict[str, Any], answers: dict[str, Any], environment: Environment
) -> bool:
    """Tell whether Copier asks (and records) a question, given the answers."""
    when = details.get("when", True)
    if isinstance(when, str):
        when = environment.from_string(when).render(answers)
    if isinstance(when, str):
        return when.strip().lower() not in FALSE_WORDS
    return bool(when)


def rendered_files(project: Path) -> list[Path]:
    """Every file of the rendered project, outside ``.git``."""
    return [
        path
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    ]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {"schedule_kind": "interval", "schedule_interval_minutes": 30},
            id="interval",
        ),
        pytest.param(
            {
                "schedule_kind": "rrule",
                "schedule_rrule": "FREQ=WEEKLY;BYDAY=MO",
                "email_provider": "smtp",
                "discord_alerts": False,
            },
            id="rrule-smtp-no-discord",
        ),
    ],
)
def test_answers_file_holds_every_asked_question(
    template_src: Path,
    tmp_path: Path,
    when_environment: Environment,
    data: dict[str, Any],
) -> None:
    """Each question asked has its answer recorded; each skipped one has none."""
    project = render(template_src, tmp_path / "project", data)

    answers = read_answers(project)
    questions = load_questions(template_src)
    expected = {
        name
        for name, details in questions.items()
        if asked(details, answers, when_environment)
    }
    recorded = {name for name in answers if not name.startswith("_")}
    assert recorded == expected
    assert {name: answers[name] for name in data} == data
    assert answers["_src_path"] == str(template_src)
    assert answers["_commit"]


def test_no_question_asks_for_a_secret(template_src: Path) -> None:
    """No question is secret or named like one: keys go in .env, not in Copier."""
    questions = load_questions(template_src)

    secret = [name for name, details in questions.items() if details.get("secret")]
    secret_named = [name for name in questions if SECRET_NAME.search(name)]
    assert secret == []
    assert secret_named == []


def test_answers_file_holds_no_secret(
    template_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither a key nor a value of the answers file is a secret from the shell."""
    for name, value in SECRET_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)

    project = render(template_src, tmp_path / "project")

    answers = read_answers(project)
    assert [key for key in answers if SECRET_NAME.search(key)] == []
    values = {str(value) for value in answers.values()}
    assert values.isdisjoint(SECRET_ENVIRONMENT.values())


def test_no_rendered_file_holds_a_secret_from_the_environment(
    template_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full copy, post-copy task included, writes no secret from the shell."""
    for name, value in SECRET_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)

    project = render(template_src, tmp_path / "project", skip_tasks=False)

    files = rendered_files(project)
    assert project / ANSWERS_FILE in files
    leaks = [
        (path.relative_to(project).as_posix(), name)
        for path in files
        for name, value in SECRET_ENVIRONMENT.items()
        if value.encode() in path.read_bytes()
    ]
    assert leaks == []


def test_secret_passed_as_data_is_not_recorded(
    template_src: Path, tmp_path: Path
) -> None:
    """A key passed with --data for no question never reaches the answers file."""
    secret = SECRET_ENVIRONMENT["LOOPS_API_KEY"]

    project = render(template_src, tmp_path / "project", {"loops_api_key": secret})

    answers_text = (project / ANSWERS_FILE).read_text(encoding="utf-8")
    assert "loops_api_key" not in answers_text
    assert secret not in answers_text
