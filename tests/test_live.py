"""One end-to-end run on a real Prefect server, as a team would run a project.

`prefect server start` on 127.0.0.1, the project's `serve` (its deployments,
schedules and event triggers) and `receive` (the signed receiver and the
links) each run as a process of their own. A signed opt-in posted over HTTP
must come out as the funnel's confirmation email; pressing the link's button
must bring the lead magnet and then the nurture sequence's first email:
receiver, store, Prefect events, triggers, served flow runs and channel, all
for real.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from live import post_signed, running_project, wait_for_files
from template_repo import render

pytest_plugins = ["template_repo"]

SECRET = "live-test-secret"  # noqa: S105 (the test's own receiver)
EMAIL_WAIT_SECONDS = 120
CONFIRM_LINK = re.compile(r"http[^\s)]+/confirm/[^\s)]+")


def plain_text(path: Path) -> str:
    """The plain-text part of an email file."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    return str(body.get_content()) if body is not None else ""


def test_signed_opt_in_becomes_confirmation_magnet_and_sequence(
    tmp_path: Path, template_src: Path
) -> None:
    """Opt-in, confirmation email, button, magnet, first nurture email."""
    project = render(
        template_src, tmp_path / "project", {"campaign_flows": ["nurture", "funnel"]}
    )
    outbox = project / "outbox"

    with running_project(project, SECRET, tmp_path / "logs") as running:
        answer = post_signed(
            f"{running.receiver_url}/events",
            SECRET,
            {
                "id": "evt-live",
                "type": "lead.opted_in",
                "data": {"email": "live@example.com", "source": "live-test"},
            },
        )
        confirmations = wait_for_files(outbox, "*.confirm-1.*.eml", EMAIL_WAIT_SECONDS)
        link = (
            CONFIRM_LINK.search(plain_text(confirmations[0])) if confirmations else None
        )
        pressed = (
            httpx.post(running.receiver_url + urlsplit(link.group(0)).path, timeout=10)
            if link
            else None
        )
        magnets = wait_for_files(outbox, "*.magnet.*.eml", EMAIL_WAIT_SECONDS)
        firsts = wait_for_files(outbox, "*.call-to-action.*.eml", EMAIL_WAIT_SECONDS)

    logs = "\n".join(
        (tmp_path / "logs" / name).read_text()[-2000:]
        for name in ("serve.log", "receive.log")
    )
    assert answer.status_code == 202, answer.text
    assert len(confirmations) == 1, logs
    message = confirmations[0].read_text()
    assert "To: live@example.com" in message
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in message
    assert pressed is not None, message
    assert pressed.status_code == 200, pressed.text
    assert len(magnets) == 1, logs
    assert len(firsts) == 1, logs
    assert sorted(path.name for path in outbox.glob("*.eml")) == sorted(
        path.name for path in (*confirmations, *magnets, *firsts)
    )
