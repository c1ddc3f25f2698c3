"""One end-to-end run on a real Prefect server, as a team would run a project.

`prefect server start` on 127.0.0.1, the project's `serve` (its deployments,
schedules and event triggers) and `receive` (the signed receiver) each run as
a process of their own. A signed opt-in posted over HTTP must come out as the
sequence's first email in the outbox: receiver, store, Prefect event, trigger,
served flow run and channel, all for real.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from template_repo import render

pytest_plugins = ["template_repo"]

SECRET = "live-test-secret"  # noqa: S105 (the test's own receiver)
SERVER_STARTUP_SECONDS = 120
EMAIL_WAIT_SECONDS = 120


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for ``url`` to answer, or fail with the process's log."""
    deadline = time.monotonic() + SERVER_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not come up:\n{log.read_text()[-3000:]}")


@contextmanager
def started(
    command: list[str], cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a command in the background for the length of the block."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def signed_post(url: str, event: dict[str, object]) -> httpx.Response:
    """Post an event signed as the sender's guide says."""
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(
        SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return httpx.post(
        url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Campaign-Timestamp": timestamp,
            "X-Campaign-Signature": f"v1={digest}",
        },
        timeout=10,
    )


def test_signed_opt_in_becomes_the_first_email(
    tmp_path: Path, template_src: Path
) -> None:
    """Opt-in over HTTP, event to Prefect, triggered tick, email in the outbox."""
    project = render(template_src, tmp_path / "project")
    package = next((project / "src").iterdir()).name
    api_port, receiver_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PYTHONPATH": str(project / "src"),
        "WEBHOOK_SECRET": SECRET,
    }
    env.pop("PREFECT_API_URL", None)
    server_command = [
        sys.executable, "-m", "prefect", "server", "start",
        "--host", "127.0.0.1", "--port", str(api_port),
    ]  # fmt: skip
    project_env = {**env, "PREFECT_API_URL": api_url}

    with started(server_command, project, env, tmp_path / "server.log") as server:
        wait_until_up(f"{api_url}/health", server, tmp_path / "server.log")
        with (
            started(
                [sys.executable, "-m", package, "serve"],
                project,
                project_env,
                tmp_path / "serve.log",
            ),
            started(
                [
                    sys.executable,
                    "-m",
                    package,
                    "receive",
                    "--port",
                    str(receiver_port),
                ],
                project,
                project_env,
                tmp_path / "receive.log",
            ) as receiver,
        ):
            receiver_url = f"http://127.0.0.1:{receiver_port}"
            wait_until_up(f"{receiver_url}/healthz", receiver, tmp_path / "receive.log")
            wait_for_trigger(api_url)
            answer = signed_post(
                f"{receiver_url}/events",
                {
                    "id": "evt-live",
                    "type": "lead.opted_in",
                    "data": {"email": "live@example.com", "source": "live-test"},
                },
            )
            assert answer.status_code == 202, answer.text
            emails = wait_for_emails(project / "outbox")

    logs = "\n".join(
        (tmp_path / name).read_text()[-2000:] for name in ("serve.log", "receive.log")
    )
    assert len(emails) == 1, logs
    message = emails[0].read_text()
    assert "To: live@example.com" in message
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in message


def wait_for_trigger(api_url: str) -> None:
    """Wait until `serve` has registered the tick's event trigger."""
    deadline = time.monotonic() + SERVER_STARTUP_SECONDS
    while time.monotonic() < deadline:
        automations = httpx.post(f"{api_url}/automations/filter", json={}).json()
        if any("lead.opted_in" in a["trigger"].get("expect", []) for a in automations):
            return
        time.sleep(0.5)
    pytest.fail("serve did not register the opt-in trigger")


def wait_for_emails(outbox: Path) -> list[Path]:
    """The emails in the outbox, once there is one, or none after the wait."""
    deadline = time.monotonic() + EMAIL_WAIT_SECONDS
    while time.monotonic() < deadline:
        emails = sorted(outbox.glob("*.eml"))
        if emails:
            return emails
        time.sleep(0.5)
    return []
