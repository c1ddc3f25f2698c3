"""The exceptions this project raises, in one tree.

``CampaignError`` is the root. Below it:

- ``ConfigurationError``: campaign.yaml, content/ or a setting is wrong; the
  message names the file and field and says how to fix it. Nothing is sent.
- ``ApiError``: an outside service answered with an error, or could not be
  reached. ``retryable`` tells a passing fault (429, 5xx, a timeout) from a
  refusal that will not change on its own (a wrong key, an unknown template):
  that stops the run, and the sends wait for the setting to be fixed.
- ``CircuitOpenError``: a service failed so often that calls to it are held
  back for a while; the work is left for the next run.
- ``DeliveryRejected``: the provider refused one message for good (an invalid
  address, a recipient the mail server does not know). The send is recorded as
  failed and not tried again.
"""

from __future__ import annotations


class CampaignError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigurationError(CampaignError):
    """A campaign file, a content file or a setting is wrong."""


class ApiError(CampaignError):
    """An outside service answered with an error or could not be reached.

    Args:
        service: The service's name, such as ``"loops"``.
        message: What went wrong, in the service's words where it gave any.
        status_code: The HTTP status, or ``None`` when no answer came back.
        retryable: Whether trying again later may succeed.
    """

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
    ) -> None:
        self.service = service
        self.status_code = status_code
        self.retryable = retryable
        status = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(f"{service}{status}: {message}")


class CircuitOpenError(CampaignError):
    """Calls to a failing service are held back until it has had time to heal.

    Args:
        service: The service's name.
        retry_in: Seconds until the next call is let through.
    """

    def __init__(self, service: str, retry_in: float) -> None:
        self.service = service
        self.retry_in = retry_in
        super().__init__(
            f"{service} failed too often; calls resume in {retry_in:.0f} s. "
            "Pending sends stay queued for the next run."
        )


class DeliveryRejected(CampaignError):
    """The provider refused one message for good; it will not be retried."""
