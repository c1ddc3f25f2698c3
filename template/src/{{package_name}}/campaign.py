"""campaign.yaml as validated models: what marketers edit, checked before any send.

A mistake in campaign.yaml or in a content file stops the run before anything
goes out, with a ``ConfigurationError`` that names the file, the field and
what to write instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigurationError
from .sequence import SendWindow

CONFLICT_MARKER = re.compile(r"^(<{7}|>{7}|={7})( |$)", re.MULTILINE)
SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'"
        raise ValueError(msg) from None
    return name


def _email_address(address: str) -> str:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        msg = f"{address!r} is not an email address ({exc})"
        raise ValueError(msg) from None
    return address


TimeZoneName = Annotated[str, AfterValidator(_known_time_zone)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]


class Model(BaseModel):
    """A strict campaign model: unknown keys are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Sender(Model):
    """Who the emails come from; the postal address is required by law."""

    name: str = Field(min_length=1)
    email: EmailAddress
    reply_to: EmailAddress | None = None
    postal_address: str = Field(min_length=5)


class Offer(Model):
    """What the sequence sells."""

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://\S+$")
    price: str = ""
    bonus: str = ""


class SequenceStep(Model):
    """One email of a sequence: its content file and its day after opt-in."""

    slug: str = Field(pattern=SLUG_PATTERN, max_length=40)
    day: int = Field(ge=0, le=365)


class Sequence(Model):
    """An email sequence: steps in the order they go out."""

    steps: list[SequenceStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        slugs = [step.slug for step in self.steps]
        repeated = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if repeated:
            msg = f"step slugs must be unique, {', '.join(repeated)} repeats"
            raise ValueError(msg)
        days = [step.day for step in self.steps]
        if days != sorted(days):
            msg = f"step days must not go backwards, got {days}"
            raise ValueError(msg)
        return self


class Campaign(Model):
    """The whole campaign.yaml."""

    brand: str = Field(min_length=1)
    sender: Sender
    offer: Offer
    time_zone: TimeZoneName
    send_window: str
    daily_cap: int = Field(ge=1, le=10)
    nurture: Sequence

    @field_validator("send_window")
    @classmethod
    def _check_window(cls, value: str) -> str:
        SendWindow.parse(value)
        return value

    @property
    def window(self) -> SendWindow:
        """The send window, parsed."""
        return SendWindow.parse(self.send_window)

    @property
    def zone(self) -> ZoneInfo:
        """The campaign's time zone."""
        return ZoneInfo(self.time_zone)


def load_campaign(path: Path) -> Campaign:
    """Read and check campaign.yaml.

    Raises:
        ConfigurationError: The file is missing, is not valid YAML, holds
            conflict markers from an update, or breaks a rule; the message
            lists every problem with its place in the file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"{path} is missing: run the command from the project folder."
        raise ConfigurationError(msg) from None
    check_no_conflict_markers(path, text)
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"{path} is not valid YAML: {exc}"
        raise ConfigurationError(msg) from None
    try:
        return Campaign.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(describe_errors(path, exc)) from None


def check_no_conflict_markers(path: Path, text: str) -> None:
    """Refuse a file that a ``copier update`` left with conflict markers."""
    marker = CONFLICT_MARKER.search(text)
    if marker is not None:
        line = text.count("\n", 0, marker.start()) + 1
        msg = (
            f"{path} line {line} has a merge conflict marker from 'copier update': "
            "keep the lines you want, delete the markers, and run again."
        )
        raise ConfigurationError(msg)


def describe_errors(path: Path, error: ValidationError) -> str:
    """Turn pydantic's errors into one line per problem, with its place."""
    lines = [f"{path} has {error.error_count()} problem(s):"]
    for problem in error.errors():
        place = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key: check its spelling or remove it"
        elif problem["type"] == "missing":
            message = "missing: add it"
        lines.append(f"  {place}: {message}")
    return "\n".join(lines)
