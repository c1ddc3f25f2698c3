"""The questionnaire: every validator refuses bad answers through Copier itself.

Copier validates answers given with ``data`` (the API's ``--data``) and the
defaults it falls back on, and raises ``ValueError`` with the validator's
message; the same message is what an interactive user sees under the question.
The filters behind the validators are also tested directly.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from template_repo import load_filters, read_answers, render

pytest_plugins = ["template_repo"]
pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture(scope="module")
def filters(template_src: Path) -> ModuleType:
    """The template's extensions/filters.py, imported by path."""
    return load_filters(template_src)


def refusal(template_src: Path, destination: Path, data: dict[str, Any]) -> str:
    """Render with ``data`` and return the message of the validation error."""
    with pytest.raises(ValueError, match="Validation error") as caught:
        render(template_src, destination, data)
    assert not destination.exists() or not any(destination.iterdir())
    return str(caught.value)


# Answers refused by a filter; the expected message is the filter's own.
RETARGETING = {"campaign_flows": ["retargeting"]}
SOCIAL = {"campaign_flows": ["social"]}
ETL = {"campaign_flows": ["nurture", "etl"]}
FILTER_REFUSALS = [
    pytest.param(
        ETL,
        "report_emails",
        "ana@example.com, team",
        "email_list_error",
        id="report-emails",
    ),
    pytest.param(ETL, "etl_cron", "every morning", "cron_error", id="etl-cron"),
    pytest.param({}, "project_name", "", "project_name_error", id="empty-name"),
    pytest.param(
        RETARGETING,
        "meta_ad_account_id",
        "my ads",
        "ad_account_error",
        id="ad-account",
    ),
    pytest.param(
        SOCIAL, "social_times", "9am,13:00", "posting_times_error", id="posting-times"
    ),
    pytest.param({}, "project_name", "   ", "project_name_error", id="blank-name"),
    pytest.param(
        {}, "project_name", "Acme/Campaigns", "project_name_error", id="name-slash"
    ),
    pytest.param(
        {}, "project_slug", "Acme-Campaigns", "project_slug_error", id="slug-upper"
    ),
    pytest.param(
        {}, "project_slug", "acme campaigns", "project_slug_error", id="slug-space"
    ),
    pytest.param(
        {}, "project_slug", "acme--campaigns", "project_slug_error", id="slug-dashes"
    ),
    pytest.param({}, "package_name", "9lives", "package_name_error", id="pkg-digit"),
    pytest.param(
        {}, "package_name", "acme-campaigns", "package_name_error", id="pkg-dash"
    ),
    pytest.param({}, "package_name", "class", "package_name_error", id="pkg-keyword"),
    pytest.param(
        {}, "package_name", "prefect", "package_name_error", id="pkg-shadows-prefect"
    ),
    pytest.param(
        {}, "package_name", "email", "package_name_error", id="pkg-shadows-email"
    ),
    pytest.param({}, "package_name", "json", "package_name_error", id="pkg-json"),
    pytest.param({}, "package_name", "httpx", "package_name_error", id="pkg-httpx"),
    pytest.param({}, "package_name", "Acme", "package_name_error", id="pkg-upper"),
    pytest.param(
        {}, "author_email", "marketing.example.com", "email_address_error", id="email"
    ),
    pytest.param({}, "schedule_cron", "61 * * * *", "cron_error", id="cron-minute"),
    pytest.param({}, "schedule_cron", "* * *", "cron_error", id="cron-3-fields"),
    pytest.param(
        {"schedule_kind": "rrule"},
        "schedule_rrule",
        "FREQ=SOMETIMES",
        "rrule_error",
        id="rrule-freq",
    ),
    pytest.param({}, "time_zone", "Mars/Olympus", "time_zone_error", id="zone"),
    pytest.param({}, "send_window", "9-5", "send_window_error", id="window-format"),
    pytest.param(
        {}, "send_window", "17:00-09:00", "send_window_error", id="window-reversed"
    ),
    pytest.param(
        {}, "send_window", "25:00-26:00", "send_window_error", id="window-no-such-time"
    ),
]

FUNNEL = {"campaign_flows": ["funnel"]}
SCORING = {"campaign_flows": ["scoring"]}

# Answers refused by a validator written inline in copier.yml.
INLINE_REFUSALS = [
    pytest.param(
        {}, "campaign_flows", [], "Pick at least one campaign flow", id="no-flow"
    ),
    pytest.param(
        {}, "project_description", "  ", "Enter a one-sentence", id="no-description"
    ),
    pytest.param({}, "author_name", "", "Enter a name", id="no-author"),
    pytest.param({}, "email_count", 0, "from 1 to 14, got 0.", id="email-count-0"),
    pytest.param({}, "email_count", 15, "from 1 to 14, got 15.", id="email-count-15"),
    pytest.param({}, "cadence_days", 0, "from 1 to 30, got 0.", id="cadence-0"),
    pytest.param({}, "daily_cap", 0, "from 1 to 10, got 0.", id="daily-cap-0"),
    pytest.param(
        {"schedule_kind": "interval"},
        "schedule_interval_minutes",
        0,
        "above zero, got 0.",
        id="interval-0",
    ),
    pytest.param(
        FUNNEL,
        "lead_magnet_name",
        "  ",
        "Enter the lead magnet's name",
        id="magnet-name-blank",
    ),
    pytest.param(
        SCORING,
        "hot_lead_threshold",
        101,
        "Enter threshold as a whole number from 0 to 100, got 101.",
        id="threshold-101",
    ),
    pytest.param(
        SCORING,
        "score_link_click",
        -5,
        "Enter points for a link click as a whole number from 0 to 100, got -5.",
        id="points-negative",
    ),
    pytest.param(
        SCORING,
        "score_weekly_decay",
        150,
        "Enter weekly decay percent as a whole number from 0 to 100, got 150.",
        id="decay-150",
    ),
    pytest.param(
        SCORING,
        "score_cap",
        0,
        "Enter a cap from 1 to 100, got 0.",
        id="cap-0",
    ),
    pytest.param(
        {**SCORING, "hot_lead_threshold": 90},
        "score_cap",
        60,
        "The cap 60 is below the hot-lead threshold 90: no lead could ever be hot.",
        id="cap-below-threshold",
    ),
    pytest.param(
        {
            **SCORING,
            "score_email_open": 1,
            "score_link_click": 1,
            "score_page_visit": 1,
            "score_form_submission": 1,
            "score_purchase": 1,
        },
        "score_cap",
        100,
        "With these points a lead can reach at most 13, below the hot-lead "
        "threshold 80",
        id="threshold-out-of-reach",
    ),
    pytest.param(
        RETARGETING,
        "split_hot",
        20,
        "The four shares add up to 110, not 100: take 10 from one of them.",
        id="split-over-100",
    ),
    pytest.param(
        {**RETARGETING, "split_opted_in": 60},
        "split_engaged",
        50,
        "The shares so far add up to 110, over 100: enter at most 40.",
        id="split-stuck-early",
    ),
    pytest.param(
        RETARGETING,
        "split_hot",
        101,
        "Enter the hot share as a whole number from 0 to 100, got 101.",
        id="split-hot-range",
    ),
    pytest.param(
        RETARGETING,
        "monthly_budget",
        20,
        "Enter a monthly budget of at least 30 (one a day), got 20.",
        id="budget-under-30",
    ),
]


@pytest.mark.parametrize(
    ("extra", "question", "answer", "filter_name"), FILTER_REFUSALS
)
def test_filter_validator_refuses(
    template_src: Path,
    tmp_path: Path,
    filters: ModuleType,
    extra: dict[str, Any],
    question: str,
    answer: str,
    filter_name: str,
) -> None:
    """A bad answer stops the copy with the filter's message for that question."""
    expected = getattr(filters, filter_name)(answer)
    assert expected, f"{filter_name} accepted {answer!r}"

    message = refusal(template_src, tmp_path / "project", {**extra, question: answer})

    assert f"Validation error for question {question!r}: {expected}" in message


@pytest.mark.parametrize(("extra", "question", "answer", "expected"), INLINE_REFUSALS)
def test_inline_validator_refuses(
    template_src: Path,
    tmp_path: Path,
    extra: dict[str, Any],
    question: str,
    answer: Any,
    expected: str,
) -> None:
    """A bad answer stops the copy with the inline validator's message."""
    message = refusal(template_src, tmp_path / "project", {**extra, question: answer})

    assert f"Validation error for question {question!r}: " in message
    assert " ".join(expected.split()) in " ".join(message.split())


def test_an_etl_source_needs_its_channel(template_src: Path, tmp_path: Path) -> None:
    """LinkedIn metrics cannot be chosen for a project that does not post there."""
    data = {
        "campaign_flows": ["retargeting", "social", "etl"],
        "social_platforms": ["x"],
        "etl_sources": ["meta", "linkedin"],
    }
    with pytest.raises(ValueError, match="Invalid choice") as caught:
        render(template_src, tmp_path / "project", data)

    assert "needs the social scheduler on LinkedIn: choose it too, or leave " in str(
        caught.value
    )


def test_derived_package_default_is_validated(
    template_src: Path, tmp_path: Path, filters: ModuleType
) -> None:
    """A project name whose derived package name is invalid needs a package name."""
    expected = filters.package_name_error("2026_launch")

    message = refusal(
        template_src, tmp_path / "project", {"project_name": "2026 Launch"}
    )

    assert f"Validation error for question 'package_name': {expected}" in message


def test_defaults_render(default_project: Path) -> None:
    """The defaults pass every validator and are recorded in the answers file."""
    answers = read_answers(default_project)

    assert answers["campaign_flows"] == ["nurture"]
    assert answers["project_name"] == "Acme Campaigns"
    assert answers["project_slug"] == "acme-campaigns"
    assert answers["package_name"] == "acme_campaigns"
    assert answers["schedule_kind"] == "cron"
    assert (default_project / "src" / "acme_campaigns").is_dir()


VALID_ANSWERS = [
    pytest.param(
        {
            "project_name": "Growth Lab",
            "time_zone": "America/New_York",
            "schedule_kind": "cron",
            "schedule_cron": "0 9 * * 1-5",
            "send_window": "08:30-20:00",
        },
        id="weekday-cron-new-york",
    ),
    pytest.param(
        {
            "schedule_kind": "interval",
            "schedule_interval_minutes": 15,
            "time_zone": "Europe/Berlin",
            "email_provider": "smtp",
            "discord_alerts": False,
        },
        id="interval-15-smtp",
    ),
    pytest.param(
        {
            "schedule_kind": "rrule",
            "schedule_rrule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0",
            "send_window": "00:00-24:00",
        },
        id="daily-rrule-all-day",
    ),
    pytest.param(
        {"email_count": 14, "cadence_days": 30, "daily_cap": 10},
        id="upper-bounds",
    ),
    pytest.param(
        {"email_count": 1, "cadence_days": 1, "daily_cap": 1},
        id="lower-bounds",
    ),
    pytest.param(
        {
            "campaign_flows": ["funnel", "scoring"],
            "lead_magnet_kind": "assessment",
            "lead_magnet_name": "The Five-Minute Audit",
            "double_opt_in": False,
            "crm": "notion",
            "hot_lead_threshold": 0,
            "score_email_open": 0,
            "score_purchase": 100,
            "score_weekly_decay": 0,
        },
        id="funnel-scoring-edges",
    ),
]


@pytest.mark.parametrize("data", VALID_ANSWERS)
def test_valid_answers_pass(
    template_src: Path, tmp_path: Path, data: dict[str, Any]
) -> None:
    """Good answers pass validation and reach the answers file unchanged."""
    project = render(template_src, tmp_path / "project", data)

    answers = read_answers(project)
    assert {name: answers[name] for name in data} == data


# The filters, called directly -------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        pytest.param("Acme Campaigns", "acme-campaigns", id="words"),
        pytest.param("Café Déjà Vu!", "cafe-deja-vu", id="accents"),
        pytest.param("  --Growth   Lab 2026-- ", "growth-lab-2026", id="noise"),
        pytest.param("日本", "", id="no-ascii"),
    ],
)
def test_slugify(filters: ModuleType, name: str, slug: str) -> None:
    """slugify keeps lowercase ASCII words joined by single dashes."""
    assert filters.slugify(name) == slug


@pytest.mark.parametrize(
    ("filter_name", "answer"),
    [
        pytest.param("project_name_error", "Acme Campaigns", id="name"),
        pytest.param("project_slug_error", "acme-campaigns-2", id="slug"),
        pytest.param("package_name_error", "acme_campaigns", id="package"),
        pytest.param("email_address_error", "growth@example.org", id="email"),
        pytest.param("cron_error", "0 9 * * 1-5", id="cron"),
        pytest.param("rrule_error", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", id="rrule"),
        pytest.param("time_zone_error", "America/New_York", id="zone"),
        pytest.param("send_window_error", "08:30-20:00", id="window"),
        pytest.param("send_window_error", "00:00-24:00", id="window-all-day"),
        pytest.param("posting_times_error", "09:00, 13:30,18:00", id="times"),
        pytest.param("ad_account_error", "act_1234567890", id="account"),
        pytest.param("ad_account_error", "", id="account-later"),
    ],
)
def test_filter_accepts(filters: ModuleType, filter_name: str, answer: str) -> None:
    """A good answer gives an empty message."""
    assert getattr(filters, filter_name)(answer) == ""


@pytest.mark.parametrize(
    ("filter_name", "answer", "fragment"),
    [
        pytest.param(
            "project_name_error", "Acme/Campaigns", "contains /", id="name-slash"
        ),
        pytest.param("project_name_error", "!!!", "no letters or digits", id="name"),
        pytest.param(
            "package_name_error", "Acme", "'Acme' has capitals", id="package-lowercase"
        ),
        pytest.param(
            "package_name_error", "prefect", "'prefect_campaigns'", id="package-shadow"
        ),
        pytest.param("cron_error", "* * *", "needs five fields", id="cron-fields"),
        pytest.param("cron_error", "61 * * * *", "is not valid", id="cron-minute"),
        pytest.param("rrule_error", "FREQ=SOMETIMES", "'FREQ=HOURLY'", id="rrule"),
        pytest.param(
            "time_zone_error", "new_york", "Did you mean America/New_York?", id="zone"
        ),
        pytest.param("send_window_error", "9-5", "'09:00-17:00'", id="window-format"),
        pytest.param(
            "send_window_error", "09:00-24:30", "must end by 24:00", id="window-end"
        ),
        pytest.param(
            "send_window_error", "09:60-10:00", "does not exist", id="window-minute"
        ),
        pytest.param(
            "send_window_error", "09:00-09:00", "start before it ends", id="window-0"
        ),
        pytest.param("posting_times_error", "9am", "'09:00'", id="times-format"),
        pytest.param("posting_times_error", "24:00", "does not exist", id="times-24"),
        pytest.param("posting_times_error", "", "one or more", id="times-empty"),
        pytest.param("ad_account_error", "act_12ab", "with or without", id="account"),
        pytest.param("email_list_error", "a@b.co; c@d.co", "commas", id="list-sep"),
    ],
)
def test_filter_message_says_what_to_enter(
    filters: ModuleType, filter_name: str, answer: str, fragment: str
) -> None:
    """A refusal names the bad value and says what to enter instead."""
    message = getattr(filters, filter_name)(answer)

    assert repr(answer) in message
    assert fragment in message


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        pytest.param("0 * * * *", "every hour", id="hourly"),
        pytest.param("*/15 * * * *", "every 15 minutes", id="quarter-hour"),
        pytest.param(
            "0 9 * * 1-5", "at 09:00 AM, Monday through Friday", id="weekdays"
        ),
    ],
)
def test_describe_cron(filters: ModuleType, cron: str, words: str) -> None:
    """describe_cron reads a cron expression aloud, starting lowercase."""
    assert filters.describe_cron(cron) == words


@pytest.mark.parametrize(
    ("rrule", "words"),
    [
        pytest.param("FREQ=HOURLY", "every hour", id="hourly"),
        pytest.param("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "every day at 09:00", id="9am"),
        pytest.param(
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
            "every 2 weeks on Monday, Thursday",
            id="fortnightly",
        ),
        pytest.param("FREQ=HOURLY;BYMINUTE=30", "every hour at minute 30", id="half"),
        pytest.param(
            "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9,17;BYMINUTE=30",
            "every week on Monday, Wednesday, Friday at 09:30, 17:30",
            id="twice-a-day",
        ),
        pytest.param("freq=daily", "every day", id="lowercase"),
    ],
)
def test_describe_rrule(filters: ModuleType, rrule: str, words: str) -> None:
    """describe_rrule reads the frequency, interval, days and times aloud."""
    assert filters.describe_rrule(rrule) == words


@pytest.mark.parametrize(
    ("minutes", "words"),
    [
        pytest.param(1, "every minute", id="1"),
        pytest.param(15, "every 15 minutes", id="15"),
        pytest.param(60, "every hour", id="60"),
        pytest.param(90, "every 90 minutes", id="90"),
        pytest.param(120, "every 2 hours", id="120"),
    ],
)
def test_describe_interval(filters: ModuleType, minutes: int, words: str) -> None:
    """describe_interval uses hours when the minutes divide evenly."""
    assert filters.describe_interval(minutes) == words


@pytest.mark.parametrize(
    ("shares", "expected"),
    [
        pytest.param([25, 30, 35, 10], "", id="defaults"),
        pytest.param([25, 30, 35, 20], "add up to 110, not 100: take 10", id="over"),
        pytest.param([0, 0, 50, 40], "add up to 90, not 100: add 10", id="under"),
    ],
)
def test_split_error_names_the_sum(
    filters: ModuleType, shares: list[int], expected: str
) -> None:
    """The four budget shares must add up to 100; a refusal names their sum."""
    message = filters.split_error(shares)

    assert (expected in message) if expected else message == ""
