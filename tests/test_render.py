"""Rendered projects: the right files for each answer, clean code, passing tests.

A spread of answers is rendered once per session. Every render is checked for
the files its answers must and must not produce, for ruff and mypy, and for
leftover template syntax. The renders whose code differs run their own test
suites, with the interpreter running these tests: it has every dependency of a
rendered project installed, so no render pays for a virtual environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from template_repo import render

pytest_plugins = ["template_repo"]

RENDERS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "smtp-few-emails": {
        "project_name": "Zürich Growth & Co",
        "email_provider": "smtp",
        "discord_alerts": False,
        "campaign_flows": ["nurture", "etl"],
        "report_emails": "ana@example.com, team@example.com",
        "etl_cron": "30 7 * * 1-5",
        "email_count": 3,
        "cadence_days": 2,
        "daily_cap": 2,
        "schedule_kind": "interval",
        "schedule_interval_minutes": 30,
        "time_zone": "America/New_York",
        "send_window": "08:30-20:00",
    },
    "long-rrule": {
        "project_name": "Long Haul",
        "email_count": 14,
        "schedule_kind": "rrule",
        "schedule_rrule": "FREQ=DAILY;BYHOUR=9,13;BYMINUTE=0",
        "discord_alerts": False,
    },
    "single-email": {
        "project_name": "Solo",
        "package_name": "solo_mail",
        "email_count": 1,
        "schedule_cron": "*/15 * * * *",
    },
    "every-flow-assessment-notion": {
        "project_name": "Health Check",
        "campaign_flows": [
            "nurture",
            "funnel",
            "scoring",
            "retargeting",
            "social",
            "etl",
        ],
        "social_platforms": ["facebook"],
        "etl_sources": ["meta"],
        "meta_ad_account_id": "act_1234567890",
        "monthly_budget": 3100,
        "launch": True,
        "lead_magnet_kind": "assessment",
        "crm": "notion",
        "hot_lead_threshold": 75,
        "score_weekly_decay": 20,
    },
    "funnel-single-opt-in": {
        "project_name": "Checklist",
        "campaign_flows": ["funnel"],
        "double_opt_in": False,
        "email_provider": "smtp",
        "discord_alerts": False,
    },
    "scoring-alone": {
        "project_name": "Scores",
        "campaign_flows": ["scoring"],
    },
    "social-launch": {
        "project_name": "Launch Pad",
        "campaign_flows": ["nurture", "social", "etl"],
        "social_platforms": ["x", "linkedin"],
        "etl_sources": ["x", "linkedin"],
        "social_times": "08:30,12:00,17:45",
        "social_time_zone": "Europe/Berlin",
        "launch": True,
    },
}
# Renders whose code paths differ run their full test suite; the others run
# the suites that read their own campaign.yaml and content.
FULL_SUITES = (
    "defaults",
    "smtp-few-emails",
    "every-flow-assessment-notion",
    "funnel-single-opt-in",
    "social-launch",
)
QUICK_SUITES: dict[str, tuple[str, ...]] = {
    "scoring-alone": (
        "tests/test_campaign.py",
        "tests/test_scoring.py",
        "tests/test_scoring_runs.py",
    ),
}
NURTURE_QUICK_SUITES = ("tests/test_campaign.py", "tests/test_sequence.py")
NURTURE_RENDERS = [
    name
    for name, data in RENDERS.items()
    if "nurture" in data.get("campaign_flows", ["nurture"])
]
# What a project with the social scheduler on X and the launch has.
SOCIAL_FILES = [
    "calendar.py",
    "flows/social.py",
    "flows/launch.py",
    "channels/social.py",
    "channels/social_outbox.py",
    "channels/x.py",
    "content/launch.md",
]
# What a project with the marketing ETL has, whatever its sources.
ETL_FILES = [
    "flows/etl.py",
    "warehouse.py",
    "performance.py",
    "report.py",
    "sources/__init__.py",
    "sources/store.py",
]
# Content files that are not steps of the sequence.
OTHER_CONTENT = {
    "confirm",
    "confirm-reminder",
    "magnet",
    "assessment-results",
    "launch",
}
PREFECT_EVENT_TEMPLATE = re.compile(r"\{\{ event\.[\w.]+ \}\}")
LEFTOVER_TEMPLATE_SYNTAX = re.compile(r"\{\{-? |\{%-? | -?%\}")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".example", ".csv", ""}


@pytest.fixture(scope="session")
def renders(
    tmp_path_factory: pytest.TempPathFactory, template_src: Path
) -> dict[str, Path]:
    """Every render in RENDERS, made once."""
    root = tmp_path_factory.mktemp("renders")
    return {
        name: render(template_src, root / name, data) for name, data in RENDERS.items()
    }


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every render, so Prefect is analysed once."""
    return tmp_path_factory.mktemp("mypy-cache")


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command in a rendered project and capture what it prints."""
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


def project_env(project: Path) -> dict[str, str]:
    """Environment that makes a render importable without installing it."""
    return {"PYTHONPATH": f"{project / 'src'}{os.pathsep}{project / 'tests'}"}


def rendered_files(project: Path) -> list[Path]:
    """Every file of a render, relative to it, outside .git."""
    return sorted(
        path.relative_to(project)
        for path in project.rglob("*")
        if path.is_file() and ".git" not in path.relative_to(project).parts
    )


def package_dir(project: Path) -> Path:
    """The rendered package's folder."""
    (package,) = (project / "src").iterdir()
    return package


@pytest.mark.parametrize(
    ("name", "present", "absent"),
    [
        pytest.param(
            "defaults",
            ["channels/loops.py", "channels/discord.py", "flows/alerts.py"],
            ["channels/smtp.py"],
            id="loops-discord",
        ),
        pytest.param(
            "smtp-few-emails",
            ["channels/smtp.py"],
            ["channels/loops.py", "channels/discord.py", "flows/alerts.py"],
            id="smtp-alone",
        ),
    ],
)
def test_only_chosen_channels_are_rendered(
    renders: dict[str, Path], name: str, present: list[str], absent: list[str]
) -> None:
    """A channel the answers did not choose leaves no module, test or setting."""
    project = renders[name]
    package = package_dir(project)
    for module in present:
        assert (package / module).is_file(), module
    for module in absent:
        assert not (package / module).exists(), module
        stem = Path(module).stem
        assert not (project / "tests" / f"test_{stem}.py").exists()
        assert f"{stem.upper()}_" not in (project / ".env.example").read_text()


@pytest.mark.parametrize(
    ("name", "present", "absent"),
    [
        pytest.param(
            "defaults",
            ["flows/nurture.py"],
            [
                "flows/funnel.py",
                "flows/scoring.py",
                "flows/crm.py",
                "crm.py",
                "scoring.py",
                "assessment.py",
                "content/magnet.md",
                "content/insights",
            ],
            id="nurture-alone",
        ),
        pytest.param(
            "every-flow-assessment-notion",
            [
                "flows/nurture.py",
                "flows/funnel.py",
                "flows/scoring.py",
                "flows/crm.py",
                "crm.py",
                "scoring.py",
                "assessment.py",
                "channels/notion.py",
                "content/confirm.md",
                "content/assessment-results.md",
                "content/insights/strategy.md",
                "audiences.py",
                "budget.py",
                "flows/retargeting.py",
                "flows/social.py",
                "flows/launch.py",
                "channels/facebook_page.py",
                "content/launch.md",
                *ETL_FILES,
                "sources/meta.py",
            ],
            [
                "channels/x.py",
                "channels/linkedin.py",
                "sources/x.py",
                "sources/linkedin.py",
            ],
            id="every-flow",
        ),
        pytest.param(
            "funnel-single-opt-in",
            ["flows/funnel.py", "crm.py", "content/magnet.md"],
            [
                "flows/nurture.py",
                "flows/scoring.py",
                "scoring.py",
                "assessment.py",
                "channels/notion.py",
                "content/confirm.md",
                "content/confirm-reminder.md",
                "content/insights",
            ],
            id="funnel-single-opt-in",
        ),
        pytest.param(
            "scoring-alone",
            ["flows/scoring.py", "scoring.py", "crm.py"],
            [
                "flows/nurture.py",
                "flows/funnel.py",
                "content/magnet.md",
                "channels/notion.py",
            ],
            id="scoring-alone",
        ),
        pytest.param(
            "social-launch",
            [
                *SOCIAL_FILES,
                "channels/linkedin.py",
                *ETL_FILES,
                "sources/x.py",
                "sources/linkedin.py",
            ],
            [
                "channels/facebook_page.py",
                "flows/funnel.py",
                "flows/retargeting.py",
                "sources/meta.py",
            ],
            id="social-launch",
        ),
        pytest.param(
            "defaults",
            [],
            [*SOCIAL_FILES, *ETL_FILES, "sources"],
            id="no-social-no-etl",
        ),
        pytest.param(
            "smtp-few-emails",
            ETL_FILES,
            ["sources/meta.py", "sources/x.py", "sources/linkedin.py"],
            id="etl-store-only",
        ),
    ],
)
def test_only_chosen_flows_are_rendered(
    renders: dict[str, Path], name: str, present: list[str], absent: list[str]
) -> None:
    """A flow the answers did not choose leaves no module, content or deployment."""
    project = renders[name]
    package = package_dir(project)

    def place(item: str) -> Path:
        return project / item if item.startswith("content") else package / item

    for item in present:
        assert place(item).exists(), item
    for item in absent:
        assert not place(item).exists(), item
    flows = RENDERS[name].get("campaign_flows", ["nurture"])
    campaign = yaml.safe_load((project / "campaign.yaml").read_text())
    sections = {
        "nurture": "nurture",
        "funnel": "funnel",
        "scoring": "scoring",
        "retargeting": "retargeting",
        "social": "social",
        "etl": "etl",
    }
    for flow, section in sections.items():
        assert (section in campaign) == (flow in flows), section
    assert ("launch" in campaign) == RENDERS[name].get("launch", False)


def test_social_settings_follow_the_chosen_platforms(renders: dict[str, Path]) -> None:
    """Only the chosen platforms' keys are settings; X brings its signer."""
    project = renders["social-launch"]
    env_example = (project / ".env.example").read_text()
    pyproject = (project / "pyproject.toml").read_text()
    deployments = yaml.safe_load((project / "prefect.yaml").read_text())

    assert "X_API_KEY=" in env_example
    assert "LINKEDIN_TOKEN_EXPIRES_ON=" in env_example
    assert "FACEBOOK_PAGE_TOKEN" not in env_example
    assert "META_GRAPH_VERSION" not in env_example
    assert '"oauthlib>=3.2"' in pyproject
    assert '"types-oauthlib"' in pyproject
    [scheduler] = [
        entry
        for entry in deployments["deployments"]
        if entry["name"] == "social-scheduler"
    ]
    assert scheduler["schedules"] == [{"interval": 300, "timezone": "Europe/Berlin"}]
    assert scheduler["concurrency_limit"] == 1


def test_retargeting_answers_reach_campaign_yaml_and_settings(
    renders: dict[str, Path],
) -> None:
    """The budget and split go to campaign.yaml, the ad account to .env.example."""
    project = renders["every-flow-assessment-notion"]
    campaign = yaml.safe_load((project / "campaign.yaml").read_text())
    env_example = (project / ".env.example").read_text()
    deployments = yaml.safe_load((project / "prefect.yaml").read_text())

    budget = campaign["retargeting"]["budget"]
    assert budget["monthly"] == 3100
    assert budget["split"] == {
        "opted_in": 25,
        "engaged": 30,
        "high_intent": 35,
        "hot": 10,
    }
    assert "META_AD_ACCOUNT_ID=act_1234567890" in env_example
    assert "META_ACCESS_TOKEN=\n" in env_example
    assert "retarget" in {entry["name"] for entry in deployments["deployments"]}


def test_example_posts_use_the_answered_times(renders: dict[str, Path]) -> None:
    """The example calendar posts at the answered times, on the chosen platforms."""
    campaign = yaml.safe_load((renders["social-launch"] / "campaign.yaml").read_text())
    posts = campaign["social"]["posts"]

    assert campaign["social"]["time_zone"] == "Europe/Berlin"
    assert {str(post["at"])[11:16] for post in posts} <= {"08:30", "12:00", "17:45"}
    assert all(post["platforms"] == ["x", "linkedin"] for post in posts)
    assert all(set(post["text"]) == {"x", "linkedin"} for post in posts)


@pytest.mark.parametrize("name", NURTURE_RENDERS)
def test_sequence_has_one_content_file_per_email(
    renders: dict[str, Path], name: str
) -> None:
    """campaign.yaml lists email_count steps, each with its content file."""
    project = renders[name]
    count = RENDERS[name].get("email_count", 7)
    cadence = RENDERS[name].get("cadence_days", 1)
    steps = yaml.safe_load((project / "campaign.yaml").read_text())["nurture"]["steps"]
    assert [step["day"] for step in steps] == [n * cadence for n in range(count)]
    stems = {path.stem for path in (project / "content").glob("*.md")}
    assert stems - OTHER_CONTENT == {step["slug"] for step in steps}
    assert steps[0]["slug"] == "call-to-action"
    if count > 1:
        assert steps[-1]["slug"] == "last-chance"


def test_standard_sequence_follows_the_soap_opera_arc(
    renders: dict[str, Path],
) -> None:
    """Seven emails run from the call to action to the last chance, in order."""
    campaign = yaml.safe_load((renders["defaults"] / "campaign.yaml").read_text())
    assert [step["slug"] for step in campaign["nurture"]["steps"]] == [
        "call-to-action",
        "backstory",
        "epiphany",
        "social-proof",
        "urgency",
        "bonuses",
        "last-chance",
    ]


@pytest.mark.parametrize(
    ("name", "schedule"),
    [
        pytest.param("defaults", {"cron": "0 * * * *", "timezone": "UTC"}, id="cron"),
        pytest.param(
            "smtp-few-emails",
            {"interval": 1800, "timezone": "America/New_York"},
            id="interval",
        ),
        pytest.param(
            "long-rrule",
            {"rrule": "FREQ=DAILY;BYHOUR=9,13;BYMINUTE=0", "timezone": "UTC"},
            id="rrule",
        ),
    ],
)
def test_deployments_carry_the_chosen_schedule(
    renders: dict[str, Path], name: str, schedule: dict[str, Any]
) -> None:
    """prefect.yaml's tick deployment has the schedule and time zone answered."""
    deployments = yaml.safe_load((renders[name] / "prefect.yaml").read_text())
    tick = next(d for d in deployments["deployments"] if d["name"] == "nurture-tick")
    assert tick["schedules"] == [schedule]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        pytest.param("defaults", "runs every hour", id="cron"),
        pytest.param("smtp-few-emails", "runs every 30 minutes", id="interval"),
        pytest.param("long-rrule", "runs every day at 09:00, 13:00", id="rrule"),
        pytest.param("single-email", "runs every 15 minutes", id="cron-15"),
    ],
)
def test_readme_describes_the_schedule_in_words(
    renders: dict[str, Path], name: str, words: str
) -> None:
    """The rendered README says when the tick runs, in words."""
    readme = " ".join((renders[name] / "README.md").read_text().split())
    assert words in readme


@pytest.mark.parametrize("name", list(RENDERS))
def test_no_template_syntax_is_left(renders: dict[str, Path], name: str) -> None:
    """No Jinja is left in data and prose files, and all read as hand-written.

    content/ and code spans keep variables filled at send time, and
    prefect.yaml the event values its triggers pass on; Python files
    with leftovers would fail ruff and mypy. No file has trailing spaces or
    runs of blank lines.
    """
    project = renders[name]
    for path in rendered_files(project):
        if path.suffix not in TEXT_SUFFIXES or path.parts[0] == "content":
            continue
        text = (project / path).read_text(encoding="utf-8")
        code = re.sub(r"`[^`\n]*`", "", text) if path.suffix == ".md" else text
        if path.name == "prefect.yaml":
            # Trigger parameters are Prefect's own templates, filled per event.
            code = PREFECT_EVENT_TEMPLATE.sub("", code)
        if path.suffix != ".py":
            assert not LEFTOVER_TEMPLATE_SYNTAX.search(code), path
        assert not re.search(r"[ \t]+$", text, re.MULTILINE), path
        assert "\n\n\n\n" not in text, path
        assert text.endswith("\n"), path
        assert not text.endswith("\n\n"), path


@pytest.mark.parametrize("name", list(RENDERS))
def test_ruff_passes_unchanged(renders: dict[str, Path], name: str) -> None:
    """ruff format and ruff check pass on the render as Copier wrote it."""
    project = renders[name]
    formatted = run([sys.executable, "-m", "ruff", "format", "--check", "."], project)
    checked = run([sys.executable, "-m", "ruff", "check", "."], project)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("name", list(RENDERS))
def test_mypy_strict_passes(
    renders: dict[str, Path], name: str, mypy_cache: Path
) -> None:
    """mypy --strict, as the project configures it, finds nothing in src and tests."""
    project = renders[name]
    result = run(
        # Absolute paths: renders share the cache, and mypy trusts a cached
        # module whose path, size and mtime second all match.
        [
            sys.executable,
            "-m",
            "mypy",
            "--cache-dir",
            str(mypy_cache),
            str(project / "src"),
            str(project / "tests"),
        ],
        project,
        MYPYPATH=str(project / "tests"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_dependencies_are_installed_here(renders: dict[str, Path]) -> None:
    """This environment has every rendered dependency, so renders can share it."""
    from importlib.metadata import PackageNotFoundError, version

    missing = []
    for project in renders.values():
        pyproject = (project / "pyproject.toml").read_text()
        names = re.findall(r'^\s+"([A-Za-z0-9_.-]+)[<>=!~ ]', pyproject, re.MULTILINE)
        for name in names:
            try:
                version(name)
            except PackageNotFoundError:
                missing.append(name)
    assert missing == []


@pytest.mark.parametrize("name", list(RENDERS))
def test_rendered_project_tests_pass(renders: dict[str, Path], name: str) -> None:
    """The render's own tests pass: all of them where its code differs."""
    project = renders[name]
    if name in FULL_SUITES:
        suites: list[str] = []
    else:
        suites = list(QUICK_SUITES.get(name, NURTURE_QUICK_SUITES))
    result = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites],
        project,
        **project_env(project),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


def test_demo_runs_the_whole_sequence(renders: dict[str, Path]) -> None:
    """The demo sends every step to the sample leads and shows the outbox."""
    project = renders["defaults"]
    package = package_dir(project).name
    result = run(
        [sys.executable, "-m", package, "demo"],
        project,
        **project_env(project),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    outbox = project / "outbox" / "demo"
    emails = list(outbox.glob("*.eml"))
    assert f"Emails in the outbox: {len(emails)} files in {outbox}" in result.stdout
    for slug in ("call-to-action", "backstory", "last-chance"):
        assert re.search(rf"{slug}\s+\d+", result.stdout), slug
    assert "Skipped sends by reason: exited 1, suppressed 1" in result.stdout
    # Six of the eight sample leads get all seven emails. The one who
    # unsubscribes on the second day got two; the buyer, on the third, three.
    assert len(emails) == 6 * 7 + 2 + 3


def test_post_copy_task_formats_and_commits(tmp_path: Path, template_src: Path) -> None:
    """With tasks on, the project is a git repository with one clean commit."""
    project = render(template_src, tmp_path / "project", skip_tasks=False)
    log = run(["git", "log", "--oneline"], project)
    status = run(["git", "status", "--porcelain"], project)
    assert len(log.stdout.splitlines()) == 1
    assert status.stdout == ""


def test_demo_runs_every_flow(renders: dict[str, Path]) -> None:
    """With every flow, the demo also fills the audiences, posts and previews."""
    project = renders["every-flow-assessment-notion"]
    result = run(
        [sys.executable, "-m", package_dir(project).name, "demo"],
        project,
        **project_env(project),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    outbox = project / "outbox" / "demo"
    changes = [
        json.loads(line)
        for line in (outbox / "audiences.jsonl").read_text().splitlines()
    ]
    posts = (outbox / "social.jsonl").read_text().splitlines()
    assert "Retargeting audiences:" in result.stdout
    assert {line["audience"] for line in changes} >= {"opted_in", "engaged", "hot"}
    assert len((outbox / "budgets.jsonl").read_text().splitlines()) == 4
    assert len(posts) == 3
    assert f"Social posts: facebook 3, in {outbox / 'social.jsonl'}" in result.stdout
    assert (outbox / "launch-spring-launch-preview.md").is_file()
    report = project / "reports" / "demo" / "report.html"
    assert f"Report: {report.parent / 'report-'}" in result.stdout
    assert report.is_file()
    assert "Funnel: opted in 8," in result.stdout


def test_etl_answers_reach_campaign_yaml_and_prefect_yaml(
    renders: dict[str, Path],
) -> None:
    """The recipients go to campaign.yaml; the schedule to the deployment."""
    project = renders["smtp-few-emails"]
    campaign = yaml.safe_load((project / "campaign.yaml").read_text())
    deployments = yaml.safe_load((project / "prefect.yaml").read_text())
    pyproject = (project / "pyproject.toml").read_text()

    assert campaign["etl"]["report"]["email_to"] == [
        "ana@example.com",
        "team@example.com",
    ]
    assert "discord" not in campaign["etl"]["report"]
    assert "meta_lookback_days" not in campaign["etl"]
    [etl] = [
        entry
        for entry in deployments["deployments"]
        if entry["name"] == "marketing-etl"
    ]
    assert etl["schedules"] == [
        {"cron": "30 7 * * 1-5", "timezone": "America/New_York"}
    ]
    assert '"duckdb>=1.1"' in pyproject
    assert '"plotly>=5.24"' in pyproject
