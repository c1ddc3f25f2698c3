"""A stand-in for Notion's data-sources API that enforces its rate limit.

It takes the calls a rendered project's ``NotionCrm`` makes: retrieving a
database and its data source, querying the data source by email, creating and
updating pages, kept in memory. Every request is recorded with its arrival
time. ``GET /stats`` reports them; ``POST /reset`` starts over.

Notion allows "an average of three requests per second" per integration and
answers 429 ``rate_limited`` with a ``Retry-After`` beyond it. Notion does not
say over what span it averages; this fake takes the strict reading, a sliding
window of one second: a request is refused when ``--rate`` requests were
already accepted within the second before it. Refused requests do not count
towards the window. A client never refused here sends at most 3 requests in
any second, so it stays under an average of 3 a second over any longer span.

    python benchmarks/fake_notion.py --port 8766 --rate 3
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections import Counter
from typing import Any

import uvicorn
from fake_loops import SlidingWindow, busiest_window
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_PORT = 8766
DEFAULT_RATE = 3
# What a refused request is told to wait, in whole seconds as Notion sends it.
RETRY_AFTER_SECONDS = 1
DATA_SOURCE_ID = "2f26ee68df304251aad48ddc420cba3d"
DATA_SOURCE_NAME = "Leads"
# The properties the project's default mapping needs, with their types.
SCHEMA = {
    "Email": "email",
    "Name": "title",
    "Status": "select",
    "Score": "number",
    "Source": "rich_text",
    "Signed up": "date",
}
TEXT_TYPES = {"title", "rich_text"}


class FakeNotion:
    """The fake's state: the limit, the pages, and every request's arrival."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.window = SlidingWindow(rate)
        self.arrivals: list[float] = []
        self.accepted_at: list[float] = []
        self.refused = 0
        self.by_route: Counter[str] = Counter()
        self.log: list[tuple[float, str, int]] = []
        self.pages: dict[str, dict[str, Any]] = {}
        self.app = Starlette(
            routes=[
                Route("/v1/databases/{database_id}", self.database, methods=["GET"]),
                Route(
                    "/v1/data_sources/{data_source_id}",
                    self.data_source,
                    methods=["GET"],
                ),
                Route(
                    "/v1/data_sources/{data_source_id}/query",
                    self.query,
                    methods=["POST"],
                ),
                Route("/v1/pages", self.create_page, methods=["POST"]),
                Route("/v1/pages/{page_id}", self.update_page, methods=["PATCH"]),
                Route("/stats", self.stats, methods=["GET"]),
                Route("/reset", self.reset, methods=["POST"]),
            ]
        )

    async def database(self, request: Request) -> Response:
        """Retrieve a database, whatever its id: one data source."""
        refusal = self._admit(request, "retrieve database")
        if refusal is not None:
            return refusal

        sources = [{"id": DATA_SOURCE_ID, "name": DATA_SOURCE_NAME}]
        return JSONResponse(
            {
                "object": "database",
                "id": request.path_params["database_id"],
                "data_sources": sources,
            }
        )

    async def data_source(self, request: Request) -> Response:
        """Retrieve the data source: its properties and their types."""
        refusal = self._admit(request, "retrieve data source")
        if refusal is not None:
            return refusal
        if request.path_params["data_source_id"] != DATA_SOURCE_ID:
            return notion_error(404, "object_not_found", "Could not find data source.")

        properties = {
            name: {"id": f"p{number}", "name": name, "type": kind, kind: {}}
            for number, (name, kind) in enumerate(SCHEMA.items())
        }
        return JSONResponse(
            {"object": "data_source", "id": DATA_SOURCE_ID, "properties": properties}
        )

    async def query(self, request: Request) -> Response:
        """Find the pages whose email property equals the filter's value."""
        refusal = self._admit(request, "query")
        if refusal is not None:
            return refusal

        body = await request.json()
        condition = body["filter"]
        wanted = condition[SCHEMA[condition["property"]]]["equals"]
        matches = [
            page
            for page in self.pages.values()
            if page["properties"]["Email"]["email"] == wanted
        ]
        size = int(body.get("page_size", 100))
        return JSONResponse(
            {
                "object": "list",
                "results": matches[:size],
                "next_cursor": None,
                "has_more": len(matches) > size,
            }
        )

    async def create_page(self, request: Request) -> Response:
        """Create a page with the properties given."""
        refusal = self._admit(request, "create page")
        if refusal is not None:
            return refusal

        body = await request.json()
        page: dict[str, Any] = {
            "object": "page",
            "id": str(uuid.uuid4()),
            "parent": body["parent"],
            "properties": {
                name: {"type": kind, kind: [] if kind in TEXT_TYPES else None}
                for name, kind in SCHEMA.items()
            },
        }
        _write(page, body["properties"])
        self.pages[page["id"]] = page
        return JSONResponse(page)

    async def update_page(self, request: Request) -> Response:
        """Change some properties of a page."""
        refusal = self._admit(request, "update page")
        if refusal is not None:
            return refusal
        page = self.pages.get(request.path_params["page_id"])
        if page is None:
            return notion_error(404, "object_not_found", "Could not find page.")

        body = await request.json()
        _write(page, body["properties"])
        return JSONResponse(page)

    async def stats(self, request: Request) -> Response:
        """Report the requests: counts, first and last arrival, busiest second."""
        return JSONResponse(
            {
                "requests": len(self.arrivals),
                "accepted": len(self.accepted_at),
                "refused": self.refused,
                "by_route": dict(self.by_route),
                "first_at": self.arrivals[0] if self.arrivals else None,
                "last_at": self.arrivals[-1] if self.arrivals else None,
                "busiest_second": busiest_window(self.arrivals),
                "busiest_accepted_second": busiest_window(self.accepted_at),
                "log": self.log,
            }
        )

    async def reset(self, request: Request) -> Response:
        """Forget the requests and the pages."""
        self.window = SlidingWindow(self.rate)
        self.arrivals.clear()
        self.accepted_at.clear()
        self.refused = 0
        self.by_route.clear()
        self.pages.clear()
        return JSONResponse({"object": "reset"})

    def _admit(self, request: Request, route: str) -> Response | None:
        """Record a request's arrival; refuse it for its headers or the rate."""
        now = time.monotonic()
        self.arrivals.append(now)
        self.by_route[route] += 1

        if not request.headers.get("authorization", "").startswith("Bearer "):
            return notion_error(401, "unauthorized", "API token is invalid.")
        if "notion-version" not in request.headers:
            return notion_error(
                400, "missing_version", "Notion-Version header should be defined."
            )
        if not self.window.admit():
            self.refused += 1
            self.log.append((now, route, 429))
            return notion_error(
                429,
                "rate_limited",
                "You have been rate limited. Please try again in a few minutes.",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )

        self.accepted_at.append(now)
        self.log.append((now, route, 200))
        return None


def _write(page: dict[str, Any], values: dict[str, Any]) -> None:
    """Store property values in the form Notion returns them."""
    for name, value in values.items():
        kind = SCHEMA[name]
        content = value[kind]
        if kind in TEXT_TYPES:
            content = [
                {**part, "plain_text": part["text"]["content"]} for part in content
            ]
        page["properties"][name] = {"type": kind, kind: content}


def notion_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """Answer an error in Notion's shape."""
    return JSONResponse(
        {"object": "error", "status": status, "code": code, "message": message},
        status_code=status,
        headers=headers,
    )


def main() -> None:
    """Serve the fake on the port and rate given on the command line."""
    parser = argparse.ArgumentParser(description="A fake Notion API with its limit")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--rate",
        type=int,
        default=DEFAULT_RATE,
        help="requests accepted per sliding second; 0 for no limit",
    )
    arguments = parser.parse_args()

    fake = FakeNotion(arguments.rate)
    uvicorn.run(fake.app, host=arguments.host, port=arguments.port, log_level="warning")


if __name__ == "__main__":
    main()
