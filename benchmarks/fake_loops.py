"""A stand-in for Loops' API that enforces its rate limit, for benchmarks.

It takes the calls a rendered project makes (transactional sends, contact
updates, events) and, like Loops, refuses with a 429 and no ``Retry-After``
once ``--rate`` requests were accepted within the last second, a sliding
window. ``GET /stats`` reports what it took; ``POST /reset`` starts over.
With ``--rate 0`` nothing is refused.

    python benchmarks/fake_loops.py --port 8765 --rate 10
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_PORT = 8765
DEFAULT_RATE = 10
WINDOW_SECONDS = 1.0
STARTUP_TIMEOUT_SECONDS = 10.0


class SlidingWindow:
    """Admits at most ``rate`` requests in any ``window`` seconds; 0 admits all."""

    def __init__(
        self,
        rate: int,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.window = window
        self._clock = clock
        self._recent: deque[float] = deque()

    def admit(self) -> bool:
        """Count a request in if the window has room; tell whether it had."""
        now = self._clock()
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()
        if self.rate and len(self._recent) >= self.rate:
            return False
        self._recent.append(now)
        return True

    def remaining(self) -> int:
        """Return how many more requests the current window takes."""
        return max(0, self.rate - len(self._recent)) if self.rate else 0


class FakeLoops:
    """The fake's state: the limit, what it accepted and refused, and when."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.window = SlidingWindow(rate)
        self.accepted_at: list[float] = []
        self.refused = 0
        self.used_keys: set[str] = set()
        self.app = Starlette(
            routes=[
                Route("/api/v1/transactional", self.take, methods=["POST"]),
                Route("/api/v1/contacts/update", self.take, methods=["PUT"]),
                Route("/api/v1/events/send", self.take, methods=["POST"]),
                Route("/stats", self.stats, methods=["GET"]),
                Route("/reset", self.reset, methods=["POST"]),
            ]
        )

    async def take(self, request: Request) -> Response:
        """Answer one API call as Loops would, rate limit included."""
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _loops_error(401, "Invalid API key.")
        if not self.window.admit():
            self.refused += 1
            return _loops_error(
                429, "Rate limit exceeded.", {"x-ratelimit-remaining": "0"}
            )

        self.accepted_at.append(time.time())
        headers = {
            "x-ratelimit-limit": str(self.rate),
            "x-ratelimit-remaining": str(self.window.remaining()),
        }
        key = request.headers.get("idempotency-key")
        if key is not None:
            if key in self.used_keys:
                return _loops_error(409, "Idempotency key already used.", headers)
            self.used_keys.add(key)
        await request.body()
        return JSONResponse({"success": True}, headers=headers)

    async def stats(self, request: Request) -> Response:
        """Report what was accepted and refused, and the busiest second."""
        return JSONResponse(
            {
                "accepted": len(self.accepted_at),
                "refused": self.refused,
                "first_at": self.accepted_at[0] if self.accepted_at else None,
                "last_at": self.accepted_at[-1] if self.accepted_at else None,
                "busiest_second": busiest_window(self.accepted_at),
            }
        )

    async def reset(self, request: Request) -> Response:
        """Forget everything taken so far."""
        self.window = SlidingWindow(self.rate)
        self.accepted_at.clear()
        self.refused = 0
        self.used_keys.clear()
        return JSONResponse({"success": True})


def busiest_window(times: Sequence[float], window: float = WINDOW_SECONDS) -> int:
    """Return the most of ``times`` (sorted) in any closed window of that length."""
    most = 0
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] > window:
            start += 1
        most = max(most, end - start + 1)
    return most


def _loops_error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """Answer an error in Loops' shape."""
    return JSONResponse(
        {"success": False, "message": message}, status_code=status, headers=headers
    )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(fake: FakeLoops, port: int | None = None) -> Iterator[str]:
    """Run the fake under uvicorn in a thread; yield its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        fake.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = f"The fake Loops on port {port} did not start."
            raise RuntimeError(msg)
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_SECONDS)


def main() -> None:
    """Serve the fake on the port and rate given on the command line."""
    parser = argparse.ArgumentParser(description="A fake Loops API with its rate limit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--rate",
        type=int,
        default=DEFAULT_RATE,
        help="requests accepted per sliding second; 0 for no limit",
    )
    arguments = parser.parse_args()

    fake = FakeLoops(arguments.rate)
    uvicorn.run(fake.app, host=arguments.host, port=arguments.port, log_level="warning")


if __name__ == "__main__":
    main()
