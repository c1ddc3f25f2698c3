"""Sending from a flow: due sends in batches of tasks, through the ledger.

Every flow that emails leads hands its wanted sends to ``send_all``, which
splits them into batches of ``BATCH_SIZE`` (a task run costs a few
milliseconds, so a task per lead would cost more than the sending), runs a few
batches at a time, and sends each batch through ``sending.deliver``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypeVar, cast

from prefect import task
from prefect.cache_policies import NONE
from prefect.utilities.annotations import quote

from ..channels import email_channel
from ..channels.base import EmailChannel, OutgoingEmail
from ..runtime import Runtime
from ..sending import DeliveryReport, SendPolicy, deliver
from ..store import SendRequest

BATCHES_AT_ONCE = 4
T = TypeVar("T")
Builder = Callable[[SendRequest], OutgoingEmail]


def unwalked(value: T) -> T:
    """Pass ``value`` to a task without Prefect walking through its contents.

    Prefect looks inside every task argument for futures to wait on; none of
    these hold one, and walking a batch of leads cost about a millisecond per
    lead (benchmarks/bench_step0.py).
    """
    return cast(T, quote(value))


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Split ``items`` into consecutive batches of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@task(name="send-batch", cache_policy=NONE, retries=2, retry_delay_seconds=10)
async def send_batch(
    runtime: Runtime,
    channel: EmailChannel,
    requests: Sequence[SendRequest],
    build: Builder,
    owner: str,
    now: datetime,
) -> DeliveryReport:
    """Send one batch of due sends through the ledger."""
    settings = runtime.settings
    policy = SendPolicy(
        owner=owner,
        lease=timedelta(seconds=settings.claim_lease_seconds),
        daily_cap=runtime.campaign.daily_cap,
        default_time_zone=runtime.campaign.time_zone,
        concurrency=settings.send_concurrency,
    )
    return await deliver(
        requests,
        store=runtime.store,
        channel=channel,
        build=build,
        policy=policy,
        now=now,
    )


async def send_all(
    runtime: Runtime, requests: Sequence[SendRequest], build: Builder, now: datetime
) -> DeliveryReport:
    """Send every request in batches, a few batches at a time.

    Args:
        runtime: The run's settings, campaign and store.
        requests: The wanted sends.
        build: Makes the email of a claimed send.
        now: The time of the run.
    """
    report = DeliveryReport()
    if not requests:
        return report
    owner = uuid.uuid4().hex
    gate = asyncio.Semaphore(BATCHES_AT_ONCE)
    channel = email_channel(runtime.settings)

    async def run_batch(batch: Sequence[SendRequest]) -> DeliveryReport:
        async with gate:
            return await send_batch(
                unwalked(runtime),
                unwalked(channel),
                unwalked(batch),
                unwalked(build),
                owner,
                now,
            )

    try:
        results = await asyncio.gather(
            *(
                run_batch(batch)
                for batch in batches(requests, runtime.settings.batch_size)
            )
        )
    finally:
        await channel.aclose()
    for result in results:
        report.add(result)
    return report
