"""Jinja filters for the questionnaire's validators and the rendered prose.

Each ``*_error`` filter returns an empty string for a good answer and, for a
bad one, a message that names the value and says what to enter instead. Copier
shows that message under the question and asks again.

These run inside Copier's own environment, so everything imported here must be
installed beside Copier (the README's install line lists it).
"""

from __future__ import annotations

import keyword
import re
import sys
import unicodedata
from datetime import datetime
from typing import Any
from zoneinfo import available_timezones

from cron_descriptor import get_description
from croniter import croniter
from dateutil.rrule import rrulestr
from jinja2 import Environment
from jinja2.ext import Extension

# Modules the rendered project imports at its top level; a package with one
# of these names would shadow it and break the project at import time.
PROJECT_IMPORTS = frozenset(
    {
        "aiosmtplib",
        "click",
        "email_validator",
        "httpx",
        "jinja2",
        "markdown_it",
        "prefect",
        "pydantic",
        "pydantic_settings",
        "pytest",
        "sqlalchemy",
        "starlette",
        "uvicorn",
        "yaml",
    }
)
PACKAGE_NAME_MAX_LENGTH = 40
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
WINDOW_PATTERN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
TIME_PATTERN = re.compile(r"^(\d{2}):(\d{2})$")
PATH_BREAKING = frozenset('/\\:*?"<>|')
WEEKDAYS = {
    "MO": "Monday",
    "TU": "Tuesday",
    "WE": "Wednesday",
    "TH": "Thursday",
    "FR": "Friday",
    "SA": "Saturday",
    "SU": "Sunday",
}
ORDINALS = {"1": "first", "2": "second", "3": "third", "4": "fourth", "-1": "last"}
FREQUENCIES = {
    "MINUTELY": "minute",
    "HOURLY": "hour",
    "DAILY": "day",
    "WEEKLY": "week",
    "MONTHLY": "month",
    "YEARLY": "year",
}


def slugify(value: str) -> str:
    """Turn a project name into a lowercase, dash-separated slug."""
    ascii_name = unicodedata.normalize("NFKD", value).encode("ascii", "ignore")
    words = re.findall(r"[a-z0-9]+", ascii_name.decode().lower())
    return "-".join(words)


def project_name_error(value: str) -> str:
    """Refuse an empty name or one with characters that break paths."""
    name = value.strip()
    if not name:
        return "Enter a project name, such as 'Acme Campaigns'."
    bad = sorted(PATH_BREAKING.intersection(name))
    if bad or any(ord(char) < 32 for char in name):
        shown = " ".join(bad) or "control characters"
        return (
            f"The project name {value!r} contains {shown}, which breaks file "
            "paths: use letters, digits, spaces and dashes."
        )
    if not slugify(name):
        return (
            f"The project name {value!r} has no letters or digits to build a "
            "folder name from: add some."
        )
    return ""


def project_slug_error(value: str) -> str:
    """Refuse a slug that is not lowercase words joined by single dashes."""
    if SLUG_PATTERN.fullmatch(value):
        return ""
    return (
        f"The slug {value!r} must be lowercase letters and digits joined by "
        "single dashes, such as 'acme-campaigns'."
    )


def package_name_error(value: str) -> str:
    """Refuse a package name Python cannot import or that shadows a module."""
    if not value.isidentifier() or not value.isascii():
        return (
            f"The package name {value!r} is not a Python identifier: use "
            "lowercase letters, digits and underscores, starting with a letter."
        )
    if len(value) > PACKAGE_NAME_MAX_LENGTH:
        return (
            f"The package name {value!r} is {len(value)} characters long: use "
            f"at most {PACKAGE_NAME_MAX_LENGTH}."
        )
    if value != value.lower():
        return (
            f"The package name {value!r} has capitals: use a lowercase name, "
            f"such as {value.lower()!r}."
        )
    if keyword.iskeyword(value):
        return f"The package name {value!r} is a Python keyword: choose another."
    if value in sys.stdlib_module_names or value in PROJECT_IMPORTS:
        return (
            f"The package name {value!r} would shadow the {value!r} module the "
            f"project imports: choose another, such as '{value}_campaigns'."
        )
    return ""


def email_address_error(value: str) -> str:
    """Refuse a value that does not look like an email address."""
    if EMAIL_PATTERN.fullmatch(value.strip()):
        return ""
    return f"Enter an email address such as 'team@example.com', got {value!r}."


def email_list_error(value: str) -> str:
    """Refuse a comma-separated list with an entry that is not an address."""
    for address in value.split(","):
        if address.strip() and not EMAIL_PATTERN.fullmatch(address.strip()):
            return (
                f"{address.strip()!r} is not an email address: enter addresses "
                "separated by commas, such as 'ana@example.com, team@example.com', "
                "or nothing."
            )
    return ""


def cron_error(value: str) -> str:
    """Refuse a cron expression that croniter cannot parse."""
    if len(value.split()) != 5:
        return (
            f"The cron expression {value!r} needs five fields (minute hour "
            "day month weekday), such as '0 * * * *' for hourly."
        )
    if not croniter.is_valid(value):
        return (
            f"The cron expression {value!r} is not valid: check each field, "
            "such as '0 9 * * 1-5' for 09:00 on weekdays."
        )
    return ""


def rrule_error(value: str) -> str:
    """Refuse an RRule that dateutil cannot parse."""
    try:
        rrulestr(value, dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError):
        return (
            f"The RRule {value!r} is not valid: write NAME=VALUE parts joined "
            "by ';', such as 'FREQ=HOURLY' or 'FREQ=DAILY;BYHOUR=9;BYMINUTE=0'."
        )
    return ""


def time_zone_error(value: str) -> str:
    """Refuse a time zone that zoneinfo does not know."""
    known = available_timezones()
    if value in known:
        return ""
    close = sorted(
        name for name in known if value.strip() and value.lower() in name.lower()
    )[:3]
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (
        f"The time zone {value!r} is unknown: enter an IANA name such as "
        f"'UTC', 'Europe/Berlin' or 'America/New_York'.{hint}"
    )


def send_window_error(value: str) -> str:
    """Refuse a send window that is not HH:MM-HH:MM with start before end."""
    match = WINDOW_PATTERN.fullmatch(value.strip())
    if match is None:
        return (
            f"The send window {value!r} must look like '09:00-17:00' "
            "(24-hour start and end times)."
        )
    start_hour, start_minute, end_hour, end_minute = map(int, match.groups())
    if start_hour > 23 or end_hour > 24 or start_minute > 59 or end_minute > 59:
        return f"The send window {value!r} has a time that does not exist."
    if (end_hour, end_minute) > (24, 0):
        return f"The send window {value!r} must end by 24:00."
    if (start_hour, start_minute) >= (end_hour, end_minute):
        return (
            f"The send window {value!r} must start before it ends on the same "
            "day, such as '09:00-17:00'."
        )
    return ""


def posting_times_error(value: str) -> str:
    """Refuse posting times that are not a comma-separated list of HH:MM."""
    times = [part.strip() for part in value.split(",")]
    example = "such as '09:00,13:00' (24-hour times, separated by commas)"
    if not value.strip() or not all(times):
        return f"Enter one or more posting times, {example}; got {value!r}."
    for time in times:
        match = TIME_PATTERN.fullmatch(time)
        if match is None:
            return f"The posting time {time!r} must look like '09:00', {example}."
        hour, minute = map(int, match.groups())
        if hour > 23 or minute > 59:
            return f"The posting time {time!r} does not exist: use 00:00 to 23:59."
    repeated = sorted({time for time in times if times.count(time) > 1})
    if repeated:
        return f"The posting time {repeated[0]} is listed twice: list each once."
    return ""


def points_error(value: int, what: str) -> str:
    """Refuse a number of points, a percent or a threshold outside 0-100."""
    if 0 <= value <= 100:
        return ""
    return f"Enter {what} as a whole number from 0 to 100, got {value}."


# How many times each repeatable rule counts before its cap, in the order of
# the questions: email open, link click, page visit, form submission. A
# purchase counts once. campaign.yaml.jinja renders the same caps.
RULE_REPEATS = (4, 3, 3, 2, 1)


def score_cap_error(cap: int, threshold: int, points: list[int]) -> str:
    """Refuse a cap outside 1-100, or rules under which no lead could be hot."""
    if not 1 <= cap <= 100:
        return f"Enter a cap from 1 to 100, got {cap}."
    if cap < threshold:
        return (
            f"The cap {cap} is below the hot-lead threshold {threshold}: no "
            "lead could ever be hot. Raise the cap or lower the threshold."
        )
    reachable = min(
        cap,
        sum(
            min(value * times, 100)
            for value, times in zip(points, RULE_REPEATS, strict=True)
        ),
    )
    if reachable < threshold:
        return (
            f"With these points a lead can reach at most {reachable}, below the "
            f"hot-lead threshold {threshold}: give activities more points, or "
            "lower the threshold."
        )
    return ""


AD_ACCOUNT_PATTERN = re.compile(r"(act_)?\d{5,20}")


def ad_account_error(value: str) -> str:
    """Refuse an ad account id that is not a number, with or without ``act_``."""
    if not value.strip() or AD_ACCOUNT_PATTERN.fullmatch(value.strip()):
        return ""
    return (
        f"The ad account {value!r} is not an id: enter the number Ads Manager "
        "shows (such as 1234567890, with or without 'act_'), or leave it empty."
    )


def split_error(shares: list[int], *, so_far: bool = False) -> str:
    """Refuse budget shares that do not add up to 100, naming the sum.

    With ``so_far``, the shares are the first ones answered: they are refused
    only once they pass 100, which no later answer could make right.
    """
    total = sum(shares)
    if so_far:
        if total <= 100:
            return ""
        return (
            f"The shares so far add up to {total}, over 100: enter at most "
            f"{100 - (total - shares[-1])}."
        )
    if total == 100:
        return ""
    fix = f"take {total - 100} from" if total > 100 else f"add {100 - total} to"
    return f"The four shares add up to {total}, not 100: {fix} one of them."


def lead_magnet_name_error(value: str) -> str:
    """Refuse an empty or overlong lead magnet name."""
    name = value.strip()
    if not name:
        return 'Enter the lead magnet\'s name, such as "The Growth Checklist".'
    if len(name) > 80:
        return f"Keep the lead magnet's name to 80 characters, got {len(name)}."
    return ""


def describe_cron(value: str) -> str:
    """Describe a cron expression in words, such as 'every hour'."""
    description = str(get_description(value))
    return description[0].lower() + description[1:]


def describe_rrule(value: str) -> str:
    """Describe the common parts of an RRule in words."""
    parts = dict(part.split("=", 1) for part in value.upper().split(";") if "=" in part)
    unit = FREQUENCIES.get(parts.get("FREQ", ""), "period")
    interval = int(parts.get("INTERVAL", "1"))
    words = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
    if "BYDAY" in parts:
        days = [describe_weekday(day) for day in parts["BYDAY"].split(",")]
        words += " on " + ", ".join(days)
    if "BYHOUR" in parts:
        minute = parts.get("BYMINUTE", "0").split(",")[0].zfill(2)
        hours = [f"{hour.zfill(2)}:{minute}" for hour in parts["BYHOUR"].split(",")]
        words += " at " + ", ".join(hours)
    elif "BYMINUTE" in parts:
        words += f" at minute {parts['BYMINUTE']}"
    return words


def describe_weekday(day: str) -> str:
    """Describe an RRule weekday such as 'MO', '1MO' or '-1FR' in words."""
    name = WEEKDAYS.get(day[-2:], day)
    ordinal = day[:-2]
    if not ordinal:
        return name
    return f"the {ORDINALS.get(ordinal, ordinal)} {name}"


def describe_interval(minutes: int) -> str:
    """Describe an interval in minutes, such as 'every 2 hours'."""
    if minutes % 60 == 0:
        hours = minutes // 60
        return "every hour" if hours == 1 else f"every {hours} hours"
    return "every minute" if minutes == 1 else f"every {minutes} minutes"


class CampaignFilters(Extension):
    """Register the questionnaire's validators and describers as filters."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        filters: dict[str, Any] = {
            "slugify": slugify,
            "project_name_error": project_name_error,
            "project_slug_error": project_slug_error,
            "package_name_error": package_name_error,
            "email_address_error": email_address_error,
            "cron_error": cron_error,
            "email_list_error": email_list_error,
            "rrule_error": rrule_error,
            "time_zone_error": time_zone_error,
            "send_window_error": send_window_error,
            "posting_times_error": posting_times_error,
            "points_error": points_error,
            "score_cap_error": score_cap_error,
            "ad_account_error": ad_account_error,
            "split_error": split_error,
            "lead_magnet_name_error": lead_magnet_name_error,
            "describe_cron": describe_cron,
            "describe_rrule": describe_rrule,
            "describe_interval": describe_interval,
        }
        environment.filters.update(filters)
