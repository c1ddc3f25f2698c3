"""When each step of a sequence is due: pure functions, no I/O.

A step is due at the lead's opt-in time plus the step's day offset, at the same
wall-clock time in the lead's time zone (so a daylight-saving change does not
move it by an hour), then moved into the send window: to the window's start
when it falls before it, to the next day's start when it falls after it. The
first step of day 0 is the reply to the opt-in and goes out at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

WINDOW_PATTERN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class SendWindow:
    """The local times between which marketing email may go out; end excluded."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> SendWindow:
        """Parse ``"HH:MM-HH:MM"``; ``24:00`` is accepted as the end of day.

        Raises:
            ValueError: The text is not a window that starts before it ends.
        """
        match = WINDOW_PATTERN.fullmatch(text.strip())
        if match is None:
            msg = f"Send window {text!r} must look like '09:00-17:00'."
            raise ValueError(msg)
        start_hour, start_minute, end_hour, end_minute = map(int, match.groups())
        if (end_hour, end_minute) == (24, 0):
            end_hour, end_minute = 23, 59
        try:
            window = cls(time(start_hour, start_minute), time(end_hour, end_minute))
        except ValueError as exc:
            msg = f"Send window {text!r} has a time that does not exist."
            raise ValueError(msg) from exc
        if window.start >= window.end:
            msg = f"Send window {text!r} must start before it ends on the same day."
            raise ValueError(msg)
        return window

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: datetime, zone: ZoneInfo) -> bool:
        """Tell whether ``moment`` falls inside the window in ``zone``."""
        local = moment.astimezone(zone).time()
        return self.start <= local < self.end

    def clamp(self, local: datetime) -> datetime:
        """Move a local time into the window: later that day, or the next day."""
        if local.time() < self.start:
            return _at(local, self.start)
        if local.time() >= self.end:
            return _at(local + timedelta(days=1), self.start)
        return local


def due_at(
    opted_in_at: datetime, day: int, zone: ZoneInfo, window: SendWindow
) -> datetime:
    """Return when a step ``day`` days after the opt-in is due, in UTC.

    Args:
        opted_in_at: When the lead opted in (aware).
        day: The step's offset in days; 0 with ``immediate`` sends at once.
        zone: The lead's time zone, or the campaign's.
        window: The send window in that zone.
    """
    if day == 0:
        return opted_in_at.astimezone(UTC)
    local = opted_in_at.astimezone(zone)
    target = datetime.combine(local.date() + timedelta(days=day), local.time(), zone)
    return _normalise(window.clamp(_normalise(target))).astimezone(UTC)


def _at(local: datetime, wall_clock: time) -> datetime:
    """The same local day at another wall-clock time."""
    return _normalise(datetime.combine(local.date(), wall_clock, local.tzinfo))


def _normalise(local: datetime) -> datetime:
    """Resolve a wall-clock time that a DST change skipped to a real instant."""
    return local.astimezone(UTC).astimezone(local.tzinfo)
