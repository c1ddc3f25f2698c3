"""Where the ETL's numbers come from: the store, and the channels' own reports.

The store is always read. Each outside source is a small client over the
shared HTTP client, read only once its keys are set; until then the ETL
reports it as not set up and loads the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

MetricsPlatform = Literal["x", "linkedin"]


@dataclass(frozen=True, slots=True)
class AdSetDay:
    """One ad set's results on one day, as Meta's insights report them.

    Meta revises these numbers for up to 28 days, so the ETL pulls that window
    again on every run and replaces what it held.
    """

    day: date
    ad_set_id: str
    ad_set_name: str
    # In the ad account's currency, such as 12.34.
    spend: float
    impressions: int
    clicks: int
    # Meta's lead results (its lead and pixel lead actions).
    leads: int
    purchases: int
    purchase_value: float


@dataclass(frozen=True, slots=True)
class PostMetrics:
    """One post's engagement on one platform, as the platform counts it now."""

    platform: MetricsPlatform
    post_id: str
    impressions: int
    likes: int
    comments: int
    shares: int
    # Link clicks, where the platform reports them (LinkedIn does, X does not).
    clicks: int | None = None
