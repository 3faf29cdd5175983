"""Guards in front of the routes, as plain ASGI middleware: the Host a request names (against DNS
rebinding), writes sent by other web pages, the headers that keep the pages from being framed or
their content types guessed, and a bound on the requests in flight."""

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
ANY_HOST = "*"
# The page's own scripts, styles and API calls only; canvas images are data: and blob: URLs.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
DEFAULT_MAX_CONCURRENT = 32


def refusal(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def host_name(host: str) -> str:
    """The name in a Host header: `example.org:8000` -> example.org, `[::1]:8000` -> ::1."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostCheck:
    """Answers only requests whose Host header names one of `allowed` (`*`: any). A page of another site
    that rebinds its DNS name to this address still sends its own name, and is refused."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]):
        self.app = app
        self.allowed = {host_name(name) for name in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ANY_HOST not in self.allowed:
            name = host_name(Headers(scope=scope).get("host", ""))
            if name not in self.allowed:
                response = refusal(400, f"host {name!r} is not served here; serve --allowed-hosts {name} allows it")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class SameOriginWrites:
    """Refuses (403) a POST that a browser sends from another web page: an `Origin` other than the host the
    request came to, or `Sec-Fetch-Site` cross-site or same-site. Clients that are not browsers send
    neither header and pass, as does the service's own page (same-origin)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            problem = cross_origin(Headers(scope=scope))
            if problem:
                response = refusal(
                    403, f"{problem}: writes come from this service's own page or from non-browser clients"
                )
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def cross_origin(headers: Headers) -> str | None:
    site = headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        return f"refused a request sent by another site's page (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    # The scheme is left out: behind a TLS proxy the page is https while the service hears http.
    if origin is not None and urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
        return f"refused a request sent by a page of another origin ({origin[:100]})"
    return None


class SecurityHeaders:
    """`Content-Security-Policy` (PAGE_POLICY unless the route set its own) and `nosniff` on every answer."""

    def __init__(self, app: ASGIApp, policy: str = PAGE_POLICY):
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", self.policy)
                headers.setdefault("x-content-type-options", "nosniff")
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


class InFlightLimit:
    """At most `limit` requests in flight; past it a 503 with `Retry-After` at once, instead of a queue that
    grows until the service collapses (uvicorn's own limit answers 503 without saying when to retry)."""

    def __init__(self, app: ASGIApp, limit: int = DEFAULT_MAX_CONCURRENT, retry_after_seconds: int = 1):
        if limit < 1:
            raise ValueError(f"the limit of requests in flight must be at least 1, got {limit}")
        self.app, self.limit, self.retry_after = app, limit, retry_after_seconds
        self.in_flight = 0  # one event loop runs every request: no lock needed between check and count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            response = refusal(
                503,
                f"busy: {self.limit} requests in flight, the most this service takes; retry in {self.retry_after} s",
                {"Retry-After": str(self.retry_after)},
            )
            return await response(scope, receive, send)
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
