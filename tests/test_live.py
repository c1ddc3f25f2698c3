"""One end-to-end run on a real Prefect server, as a team would run a project.

`prefect server start` on 127.0.0.1, the project's `serve` (its deployments,
schedules and event triggers) and `receive` (the signed receiver) each run as
a process of their own. A signed opt-in posted over HTTP must come out as the
sequence's first email in the outbox: receiver, store, Prefect event, trigger,
served flow run and channel, all for real.
"""

from __future__ import annotations

from pathlib import Path

from live import post_signed, running_project, wait_for_files
from template_repo import render

pytest_plugins = ["template_repo"]

SECRET = "live-test-secret"  # noqa: S105 (the test's own receiver)
EMAIL_WAIT_SECONDS = 120


def test_signed_opt_in_becomes_the_first_email(
    tmp_path: Path, template_src: Path
) -> None:
    """Opt-in over HTTP, event to Prefect, triggered tick, email in the outbox."""
    project = render(template_src, tmp_path / "project")

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
        emails = wait_for_files(project / "outbox", "*.eml", EMAIL_WAIT_SECONDS)

    assert answer.status_code == 202, answer.text
    logs = "\n".join(
        (tmp_path / "logs" / name).read_text()[-2000:]
        for name in ("serve.log", "receive.log")
    )
    assert len(emails) == 1, logs
    message = emails[0].read_text()
    assert "To: live@example.com" in message
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in message
