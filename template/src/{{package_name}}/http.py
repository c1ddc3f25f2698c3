"""The one HTTP layer every outside service goes through.

An ``ApiClient`` holds one pooled ``httpx.AsyncClient`` per service and puts
three guards in front of it:

- a ``RateLimiter`` that spaces calls evenly a little under the service's
  published rate, and pauses every caller when the service says "slow down";
- retries with capped, jittered exponential backoff for the answers that may
  pass on their own (429, 5xx, timeouts, dropped connections), honouring
  ``Retry-After``;
- a ``CircuitBreaker`` that stops calling a service that keeps failing, so a
  run leaves its work queued instead of hammering a service that is down.

Failures come out as ``ApiError`` (``retryable`` tells a passing fault from a
refusal) or ``CircuitOpenError``; see ``errors.py``.

Both the limiter and the pooled client belong to the event loop that first
uses them: create one ``ApiClient`` per service inside that loop and close it
with ``aclose()``. The limiter counts the calls of one process only; when
several workers call the same service, give each a share of its rate.
"""

# Why these pieces are written here rather than taken from a library:
# - aiolimiter's leaky bucket lets a full bucket out in one burst and cannot
#   pause the callers already waiting after a 429. Spacing calls evenly and
#   holding them all is what keeps a service under its limit; it takes a lock
#   and a few lines.
# - stamina would run the retry loop, but a delay returned for Retry-After
#   replaces its backoff outright (no cap, no jitter), so the delays, the cap,
#   the hold of every caller and the log line would all stay ours; it would
#   add stamina and tenacity as dependencies for the loop alone.

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self

import httpx

from .errors import ApiError, CircuitOpenError
from .settings import Settings

__all__ = [
    "ApiClient",
    "BreakerState",
    "CircuitBreaker",
    "RateLimiter",
    "is_retryable_status",
    "parse_retry_after",
    "service_message",
]

logger = logging.getLogger(__name__)

# The share of a service's published rate the limiter uses. The unused share
# is slack for requests that reach a server counting a sliding one-second
# window earlier or later than they were sent: (1 / HEADROOM - 1) s, about
# 40 ms a window, of which LATE_ALLOWANCE_SECONDS goes to late wake-ups.
HEADROOM = 0.96
# A call that wakes up late keeps its place on the schedule by up to this much,
# so the small oversleep of every timer does not add up to a slower rate.
LATE_ALLOWANCE_SECONDS = 0.01
# When the schedule starts afresh (the first call after a quiet spell), the
# next call waits up to this much longer (never more than half a slot): the
# first call usually opens a new connection and reaches the service later
# than calls on warm ones.
FRESH_START_SECONDS = 0.05
# The first retry waits about this long; each later one waits twice as long,
# up to the client's cap.
BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MULTIPLIER = 2.0
# The random share of each backoff delay, so that callers that failed together
# do not all come back at the same instant.
JITTER_SHARE = 0.5
# Service error messages are cut to this length before they reach an error.
MAX_MESSAGE_CHARS = 300

BreakerState = Literal["closed", "open", "half_open"]

# What a retry can cure: a timeout, a refused or dropped connection, a reply
# cut off half-way.
TRANSIENT_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)

_EMAIL_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


# TODO: keep the limiter's schedule in the store once several workers send to
# one service (the scale-out setup); until then, give each worker a share of
# the service's rate in its settings.
class RateLimiter:
    """Spaces calls evenly so that a service sees at most its published rate.

    Callers go out one at a time, in the order they asked, on a schedule with
    one slot every ``1 / (rate_per_second * headroom)`` seconds, so that no
    one-second window holds more than ``rate_per_second`` calls; under
    sustained load the limiter uses ``headroom`` of the rate. ``hold()``
    pauses every caller, including those already waiting, for as long as a
    service asked.

    Args:
        rate_per_second: The service's published limit, in calls per second.
        headroom: The share of that limit to use, above 0 and at most 1.
        clock: Returns the current time in seconds; injectable for tests.
        sleep: Waits a number of seconds; injectable for tests.

    Raises:
        ValueError: ``rate_per_second`` or ``headroom`` is out of range.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        headroom: float = HEADROOM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not rate_per_second > 0:
            msg = f"rate_per_second must be above 0, got {rate_per_second!r}."
            raise ValueError(msg)
        if not 0 < headroom <= 1:
            msg = f"headroom must be above 0 and at most 1, got {headroom!r}."
            raise ValueError(msg)

        self.rate_per_second = rate_per_second
        self.interval = 1 / (rate_per_second * headroom)
        self._allowance = min(LATE_ALLOWANCE_SECONDS, self.interval / 4)
        self._fresh_start = min(FRESH_START_SECONDS, self.interval / 2)
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._last_slot = -math.inf
        self._held_until = -math.inf

    async def acquire(self) -> None:
        """Wait until this caller may send its request."""
        async with self._lock:
            while True:
                now = self._clock()
                ready_at = max(self._last_slot + self.interval, self._held_until)
                if now >= ready_at:
                    break
                # Checked again after the sleep: a hold may have begun meanwhile.
                await self._sleep(ready_at - now)

            if now - ready_at <= self._allowance:
                # On time or nearly: keep the schedule, so small delays in
                # waking up do not add up to a slower rate.
                self._last_slot = ready_at
            else:
                # Nobody was waiting, or this call woke far too late: start
                # the schedule again from now.
                self._last_slot = now + self._fresh_start

    def hold(self, seconds: float) -> None:
        """Let no caller through for ``seconds``, as after a 429.

        Args:
            seconds: How long to pause; a shorter hold never cuts a longer one.
        """
        self._held_until = max(self._held_until, self._clock() + seconds)


class CircuitBreaker:
    """Stops calls to a service that keeps failing, then tries it again.

    Closed, calls go through. After ``failure_threshold`` failed calls in a
    row it opens, and ``check()`` raises ``CircuitOpenError`` for
    ``reset_seconds``. Then it is half-open: the next caller is let through
    as a trial. A success closes it again; a failure opens it for another
    ``reset_seconds``.

    Args:
        service: The service's name, for errors and logs.
        failure_threshold: Failed calls in a row that open the circuit.
        reset_seconds: How long an open circuit holds calls back.
        clock: Returns the current time in seconds; injectable for tests.

    Raises:
        ValueError: ``failure_threshold`` or ``reset_seconds`` is out of range.
    """

    def __init__(
        self,
        service: str,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            msg = f"failure_threshold must be 1 or more, got {failure_threshold!r}."
            raise ValueError(msg)
        if not reset_seconds > 0:
            msg = f"reset_seconds must be above 0, got {reset_seconds!r}."
            raise ValueError(msg)

        self.service = service
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._open_until = -math.inf
        self._trial_until = -math.inf

    @property
    def state(self) -> BreakerState:
        """Where the circuit stands now: closed, open or half-open."""
        if self._state == "open" and self._clock() >= self._open_until:
            return "half_open"
        return self._state

    def check(self) -> None:
        """Let a call through, or raise while the circuit is open.

        Once the circuit has been open for long enough, the first caller
        becomes the half-open trial; the others are held back until the trial
        reports, or until ``reset_seconds`` pass without a report.

        Raises:
            CircuitOpenError: The circuit is open, or a trial is under way.
        """
        if self._state == "closed":
            return

        now = self._clock()
        if self._state == "open" and now < self._open_until:
            raise CircuitOpenError(self.service, self._open_until - now)
        if self._state == "half_open" and now < self._trial_until:
            raise CircuitOpenError(self.service, self._trial_until - now)

        self._state = "half_open"
        self._trial_until = now + self.reset_seconds
        logger.info(
            "%s: circuit half-open, letting one trial call through", self.service
        )

    def raise_if_open(self) -> None:
        """Raise while the circuit is open, without taking the half-open trial.

        For a call already let through by ``check()`` that is about to try
        again: it stops if other calls opened the circuit meanwhile.

        Raises:
            CircuitOpenError: The circuit is open.
        """
        now = self._clock()
        if self._state == "open" and now < self._open_until:
            raise CircuitOpenError(self.service, self._open_until - now)

    def record_success(self) -> None:
        """Note that a call worked: the circuit closes, the count restarts."""
        if self._state != "closed":
            logger.info("%s: circuit closed, calls flow again", self.service)
        self._state = "closed"
        self._failures = 0

    def record_failure(self) -> None:
        """Note that a call failed for good; enough in a row open the circuit."""
        self._failures += 1
        if self._state == "half_open":
            self._open(self.reset_seconds, "the trial call failed")
        elif self._state == "closed" and self._failures >= self.failure_threshold:
            self._open(self.reset_seconds, f"{self._failures} failed calls in a row")

    def trip(self, seconds: float | None = None) -> None:
        """Open the circuit now, as when a service asks for a long pause.

        Args:
            seconds: How long to hold calls back; ``reset_seconds`` if not given.
        """
        pause = self.reset_seconds if seconds is None else seconds
        self._open(pause, "the service asked for a pause")

    def _open(self, pause: float, reason: str) -> None:
        """Hold calls back for ``pause`` seconds and say why."""
        self._open_until = self._clock() + pause
        self._state = "open"
        logger.warning(
            "%s: circuit open (%s); calls resume in %.1f s", self.service, reason, pause
        )


@dataclass(frozen=True, slots=True)
class _Failure:
    """One attempt that may succeed if tried again."""

    cause: str
    error: Exception
    status_code: int | None = None
    retry_after: float | None = None


class ApiClient:
    """A rate-limited, retrying, circuit-broken HTTP client for one service.

    Args:
        service: The service's name, for errors and logs (never a secret).
        base_url: What relative request URLs are joined to.
        rate_per_second: The service's published rate limit.
        timeout_seconds: How long to wait to connect, and for each read or write.
        max_attempts: Attempts per call, the first one included.
        backoff_cap_seconds: The longest wait between two attempts. A service
            asking for a longer pause fails the call at once and opens the
            circuit for that long.
        failure_threshold: Failed calls in a row that open the circuit.
        reset_seconds: How long the open circuit holds calls back.
        headers: Headers sent with every request, such as ``Authorization``.
        transport: An httpx transport to use instead of the network.

    Raises:
        ValueError: A limit is out of range.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        rate_per_second: float,
        timeout_seconds: float,
        max_attempts: int,
        backoff_cap_seconds: float,
        failure_threshold: int,
        reset_seconds: float,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_attempts < 1:
            msg = f"max_attempts must be 1 or more, got {max_attempts!r}."
            raise ValueError(msg)
        if not backoff_cap_seconds > 0:
            msg = f"backoff_cap_seconds must be above 0, got {backoff_cap_seconds!r}."
            raise ValueError(msg)

        self.service = service
        self.limiter = RateLimiter(rate_per_second)
        self.breaker = CircuitBreaker(
            service, failure_threshold=failure_threshold, reset_seconds=reset_seconds
        )
        self._max_attempts = max_attempts
        self._backoff_cap = backoff_cap_seconds
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=timeout_seconds,
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls,
        service: str,
        settings: Settings,
        *,
        base_url: str,
        rate_per_second: float,
        headers: Mapping[str, str] | None = None,
    ) -> ApiClient:
        """Build a client with the ``HTTP_*`` and ``BREAKER_*`` settings.

        Args:
            service: The service's name, for errors and logs.
            settings: The project's settings.
            base_url: The service's base URL setting.
            rate_per_second: The service's rate setting.
            headers: Headers sent with every request.

        Returns:
            A client; close it with ``aclose()``.
        """
        return cls(
            service,
            base_url,
            rate_per_second=rate_per_second,
            timeout_seconds=settings.http_timeout_seconds,
            max_attempts=settings.http_max_attempts,
            backoff_cap_seconds=settings.http_backoff_cap_seconds,
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
            headers=headers,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: object | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok_statuses: Collection[int] = (),
    ) -> httpx.Response:
        """Send a request, waiting for the limiter and retrying passing faults.

        Args:
            method: The HTTP method.
            url: A path joined to the base URL, or an absolute URL.
            json: The JSON body, if any.
            params: Query parameters.
            headers: Headers for this request, on top of the client's own.
            ok_statuses: Error statuses the caller handles itself: they are
                returned like a success, never retried or raised.

        Returns:
            The response: a 2xx, or a status in ``ok_statuses``.

        Raises:
            ApiError: The service refused the request (``retryable`` false,
                with the service's own message), or kept failing through every
                attempt, or asked for a longer pause than the backoff cap
                (``retryable`` true).
            CircuitOpenError: The service failed so often that calls to it
                are held back for now.
        """
        self.breaker.check()

        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(
                method,
                url,
                json=json,
                params=params,
                headers=headers,
                ok_statuses=ok_statuses,
            )
            if isinstance(outcome, httpx.Response):
                return outcome

            if (
                outcome.retry_after is not None
                and outcome.retry_after > self._backoff_cap
            ):
                raise self._paused(method, outcome) from outcome.error

            delay = outcome.retry_after
            if delay is None:
                delay = self._backoff(attempt)
            if outcome.status_code == 429 or outcome.retry_after is not None:
                # The service wants a pause from every caller, not only this one.
                self.limiter.hold(delay)

            if attempt >= self._max_attempts:
                self.breaker.record_failure()
                logger.error(
                    "%s %s failed on all %d attempts, the last with %s",
                    self.service,
                    method,
                    attempt,
                    outcome.cause,
                )
                msg = f"still failing after {attempt} attempts ({outcome.cause})"
                raise ApiError(
                    self.service,
                    msg,
                    status_code=outcome.status_code,
                    retryable=True,
                ) from outcome.error

            logger.warning(
                "%s %s: attempt %d of %d failed with %s; retrying in %.2f s",
                self.service,
                method,
                attempt,
                self._max_attempts,
                outcome.cause,
                delay,
            )
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _attempt(
        self,
        method: str,
        url: str,
        *,
        json: object | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        ok_statuses: Collection[int],
    ) -> httpx.Response | _Failure:
        """Make one attempt: the response, or a failure worth another try."""
        await self.limiter.acquire()
        self.breaker.raise_if_open()

        try:
            response = await self._client.request(
                method, url, json=json, params=params, headers=headers
            )
        except TRANSIENT_ERRORS as exc:
            return _Failure(cause=_describe(exc), error=exc)

        status = response.status_code
        if response.is_success or status in ok_statuses:
            self.breaker.record_success()
            return response
        if not is_retryable_status(status):
            # The service is up and answered: it refused this one request.
            self.breaker.record_success()
            raise ApiError(
                self.service,
                service_message(response),
                status_code=status,
                retryable=False,
            )

        error = httpx.HTTPStatusError(
            f"HTTP {status}", request=response.request, response=response
        )
        return _Failure(
            cause=f"HTTP {status}",
            error=error,
            status_code=status,
            retry_after=parse_retry_after(response),
        )

    def _paused(self, method: str, failure: _Failure) -> ApiError:
        """Open the circuit for the pause a service asked for, and say so."""
        pause = failure.retry_after or 0.0
        self.breaker.trip(pause)
        logger.warning(
            "%s %s: %s asks to wait %.0f s, longer than the %.0f s backoff cap; "
            "holding calls back until then",
            self.service,
            method,
            failure.cause,
            pause,
            self._backoff_cap,
        )
        msg = (
            f"{failure.cause} asks to wait {pause:.0f} s, longer than the "
            f"{self._backoff_cap:.0f} s backoff cap (HTTP_BACKOFF_CAP_SECONDS); "
            "try again after the pause"
        )
        return ApiError(
            self.service, msg, status_code=failure.status_code, retryable=True
        )

    def _backoff(self, attempt: int) -> float:
        """Return the wait after failed attempt number ``attempt``."""
        exponent = min(attempt - 1, 64)
        ceiling = min(
            self._backoff_cap, BACKOFF_INITIAL_SECONDS * BACKOFF_MULTIPLIER**exponent
        )
        fixed = ceiling * (1 - JITTER_SHARE)
        # Jitter spreads retries out; it needs no cryptographic randomness.
        return fixed + random.uniform(0, ceiling - fixed)  # noqa: S311


def is_retryable_status(status_code: int) -> bool:
    """Tell whether an HTTP status may change on its own: 429 and every 5xx."""
    return status_code == 429 or status_code >= 500


def parse_retry_after(response: httpx.Response) -> float | None:
    """Read how long a service asked callers to wait.

    Understands a JSON body's ``retry_after`` in seconds (Discord sends a
    float there) and the ``Retry-After`` header in seconds or as an HTTP date.

    Args:
        response: The service's answer.

    Returns:
        The wait in seconds, never negative; ``None`` when the answer names no
        wait or names it in a form this does not read.
    """
    seconds = _json_retry_after(response)
    header = response.headers.get("Retry-After", "").strip()
    if seconds is None and header:
        try:
            seconds = float(header)
        except ValueError:
            seconds = _seconds_until(header)

    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def service_message(response: httpx.Response) -> str:
    """Return a service's own explanation of an error answer.

    Reads the common JSON error shapes: ``{"message": ...}`` (Loops, Discord,
    LinkedIn), Notion's ``{"object": "error", "code": ..., "message": ...}``,
    ``{"error": {"message": ...}}`` (Meta), ``{"error": "..."}``, and
    ``{"errors": [{"message": ...}]}``, ``{"detail": ...}`` (X); otherwise the
    status's reason phrase. Email addresses in it are blanked out and it is
    cut to ``MAX_MESSAGE_CHARS``, since error messages end up in logs.

    Args:
        response: The service's answer.

    Returns:
        One line of text.
    """
    try:
        body: object = response.json()
    except ValueError:
        body = None

    message = _message_in(body) or response.reason_phrase
    message = " ".join(message.split()) or f"HTTP {response.status_code}"
    message = _EMAIL_ADDRESS.sub("<email address>", message)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message


def _message_in(body: object) -> str | None:
    """Find the message in a parsed JSON error body."""
    if not isinstance(body, dict):
        return None

    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    message = body.get("message")
    if isinstance(message, str):
        code = body.get("code")
        if isinstance(code, str | int) and not isinstance(code, bool):
            return f"{message} ({code})"
        return message
    if isinstance(error, str):
        return error
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0].get("message")
        if isinstance(first, str):
            return first
    detail = body.get("detail")
    return detail if isinstance(detail, str) else None


def _json_retry_after(response: httpx.Response) -> float | None:
    """Read ``retry_after`` from a JSON body, as Discord sends it."""
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        body: object = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None

    value = body.get("retry_after")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _seconds_until(http_date: str) -> float | None:
    """Return the seconds from now until an HTTP date, or None if unreadable."""
    try:
        moment = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime.now(UTC)).total_seconds()


def _describe(exc: Exception) -> str:
    """Name a transport error for a log line, without its request."""
    detail = " ".join(str(exc).split())[:MAX_MESSAGE_CHARS]
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class _HideUrlPaths(logging.Filter):
    """Cut the URLs in httpx's own log lines down to scheme and host.

    httpx logs every request's full URL at INFO level, and some services carry
    the credential in it: a Discord webhook URL is itself the secret.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                f"{arg.scheme}://{arg.netloc.decode('ascii')}/…"
                if isinstance(arg, httpx.URL)
                else arg
                for arg in record.args
            )
        return True


def _hide_httpx_url_paths() -> None:
    """Add the filter to httpx's logger once, however often this is imported."""
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HideUrlPaths) for f in httpx_logger.filters):
        httpx_logger.addFilter(_HideUrlPaths())


_hide_httpx_url_paths()
