"""Leads as they arrive: normalised, checked, and read from CSV files.

An email address is trimmed and lower-cased, so one person is one lead however
they typed it. A first name keeps letters, spaces, dashes, apostrophes and
dots only: it is pasted into emails, so it must not carry links or markup.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

FIRST_NAME_MAX_LENGTH = 50
LEAD_TAG_LENGTH = 12
NOT_IN_A_NAME = re.compile(r"[^\w \-'.]|[\d_]")
CSV_COLUMNS = ("email", "first_name", "time_zone")


class NewLead(BaseModel):
    """A lead to enroll: an email address and what we know about the person."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    email: str
    first_name: str | None = None
    time_zone: str | None = None

    @field_validator("email")
    @classmethod
    def _normalise_email(cls, value: str) -> str:
        try:
            checked = validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            msg = f"{value!r} is not an email address: {exc}"
            raise ValueError(msg) from None
        return checked.normalized.lower()

    @field_validator("first_name")
    @classmethod
    def _clean_first_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cleaned = " ".join(NOT_IN_A_NAME.sub("", value).split())
        return cleaned[:FIRST_NAME_MAX_LENGTH] or None

    @field_validator("time_zone")
    @classmethod
    def _known_time_zone(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = (
                f"unknown time zone {value!r}: use an IANA name such as 'Europe/Paris'"
            )
            raise ValueError(msg) from None
        return value


@dataclass(frozen=True, slots=True)
class RowError:
    """A CSV row that was not imported, and why."""

    line: int
    message: str


def lead_tag(address: str) -> str:
    """A short, stable tag for an address, for logs and events in its place."""
    digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()
    return digest[:LEAD_TAG_LENGTH]


def normalise_email(address: str) -> str:
    """Return the normalised form of an address, or raise ``ValueError``."""
    return NewLead(email=address).email


def read_csv(path: Path) -> tuple[list[NewLead], list[RowError]]:
    """Read leads from a CSV file with an ``email`` column.

    ``first_name`` and ``time_zone`` columns are optional. A bad row is
    reported with its line number and the other rows are still read.

    Raises:
        ValueError: The file has no header row or no ``email`` column.
    """
    leads: list[NewLead] = []
    errors: list[RowError] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip().lower() for name in reader.fieldnames or []]
        if "email" not in columns:
            msg = (
                f"{path} needs a header row with an 'email' column "
                f"(optional: first_name, time_zone); found {columns or 'none'}."
            )
            raise ValueError(msg)
        reader.fieldnames = columns
        for row in reader:
            values = {key: (row.get(key) or "").strip() or None for key in CSV_COLUMNS}
            try:
                leads.append(NewLead.model_validate(values))
            except ValidationError as exc:
                problem = "; ".join(
                    f"{'.'.join(map(str, error['loc']))}: "
                    f"{error['msg'].removeprefix('Value error, ')}"
                    for error in exc.errors()
                )
                errors.append(RowError(reader.line_num, problem))
    return leads, errors
