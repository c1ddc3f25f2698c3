"""A project running for real: a Prefect server, `serve` and `receive`.

Shared by the end-to-end test and the opt-in latency benchmark: both start
`prefect server start` on 127.0.0.1 and a rendered project's `serve` and
`receive` as processes of their own, and post signed events to the receiver.
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_SECONDS = 120
STOP_SECONDS = 20
QUIET_PREFECT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}


@dataclass(frozen=True)
class RunningProject:
    """Where the running project's Prefect API and receiver answer."""

    api_url: str
    receiver_url: str
    logs: Path


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_project(project: Path, secret: str, logs: Path) -> Iterator[RunningProject]:
    """Run a Prefect server and the project's `serve` and `receive`.

    Yields once the receiver answers and `serve` has registered the opt-in
    trigger; every process is stopped when the block ends.

    Raises:
        RuntimeError: A process did not come up in time; its log is quoted.
    """
    package = next((project / "src").iterdir()).name
    api_port, receiver_port = free_port(), free_port()
    running = RunningProject(
        api_url=f"http://127.0.0.1:{api_port}/api",
        receiver_url=f"http://127.0.0.1:{receiver_port}",
        logs=logs,
    )
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **QUIET_PREFECT, "PREFECT_HOME": str(logs / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    project_env = {
        **env,
        "PREFECT_API_URL": running.api_url,
        "PYTHONPATH": str(project / "src"),
        "WEBHOOK_SECRET": secret,
    }
    with ExitStack() as stack:
        server = stack.enter_context(
            _started(
                [sys.executable, "-m", "prefect", "server", "start",
                 "--host", "127.0.0.1", "--port", str(api_port)],
                project, env, logs / "server.log",
            )
        )  # fmt: skip
        _wait_until_up(f"{running.api_url}/health", server, logs / "server.log")
        stack.enter_context(
            _started(
                [sys.executable, "-m", package, "serve"],
                project, project_env, logs / "serve.log",
            )
        )  # fmt: skip
        receive = [
            sys.executable,
            "-m",
            package,
            "receive",
            "--port",
            str(receiver_port),
        ]
        receiver = stack.enter_context(
            _started(receive, project, project_env, logs / "receive.log")
        )
        _wait_until_up(
            f"{running.receiver_url}/healthz", receiver, logs / "receive.log"
        )
        _wait_for_trigger(running.api_url)
        yield running


def post_signed(url: str, secret: str, event: dict[str, object]) -> httpx.Response:
    """Post an event signed as the sender's guide says."""
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    digest = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
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


def wait_for_files(folder: Path, pattern: str, seconds: float) -> list[Path]:
    """The files matching ``pattern``, once there is one, or none after the wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern))
        if found:
            return found
        time.sleep(0.02)
    return []


@contextmanager
def _started(
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
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"{url} exited early:\n{log.read_text()[-3000:]}"
            raise RuntimeError(msg)
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    msg = f"{url} did not come up:\n{log.read_text()[-3000:]}"
    raise RuntimeError(msg)


def _wait_for_trigger(api_url: str) -> None:
    """Wait until `serve` has registered the tick's opt-in trigger."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        automations = httpx.post(f"{api_url}/automations/filter", json={}).json()
        if any("lead.opted_in" in a["trigger"].get("expect", []) for a in automations):
            return
        time.sleep(0.5)
    msg = "serve did not register the opt-in trigger"
    raise RuntimeError(msg)
