"""What a Playwright failure means for a request: the site gave no answer (retried a few times, then
an unreachable site), an address Chromium will not load (never retried; once a session's first page
loaded, an outage like no answer: :data:`~.blocks.SITE_WIDE_KINDS`), or the browser's own failure."""

from __future__ import annotations

import logging

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from ..errors import ContractError

# Chromium's errors for a request that reached no server, or whose server went away without answering
# (net/base/net_error_list.h), and an in-page fetch()'s word for any of them. Not ERR_ABORTED: a page
# that navigates on (a WAF interstitial reloading) aborts its own requests.
NO_ANSWER_ERRORS = (
    *(
        f"net::ERR_{name}"
        for name in (
            "CONNECTION_REFUSED",
            "CONNECTION_RESET",
            "CONNECTION_CLOSED",
            "CONNECTION_ABORTED",
            "CONNECTION_FAILED",
            "CONNECTION_TIMED_OUT",
            "TIMED_OUT",
            "EMPTY_RESPONSE",
            "NAME_NOT_RESOLVED",
            "NAME_RESOLUTION_FAILED",
            "ADDRESS_UNREACHABLE",
            "INTERNET_DISCONNECTED",
            "NETWORK_CHANGED",
            "PROXY_CONNECTION_FAILED",
            "TUNNEL_CONNECTION_FAILED",
            "SOCKS_CONNECTION_FAILED",
        )
    ),
    "TypeError: Failed to fetch",
)
# Addresses Chromium will not load whatever the site does (a port it deems unsafe, https:// to a server
# speaking http, a certificate it rejects): no retry can fix them.
UNLOADABLE_ERRORS = (
    "net::ERR_UNSAFE_PORT",
    "net::ERR_INVALID_URL",
    "net::ERR_UNKNOWN_URL_SCHEME",
    "net::ERR_DISALLOWED_URL_SCHEME",
    "net::ERR_SSL_",
    "net::ERR_CERT_",
    "Cannot navigate to invalid URL",
)
NAVIGATIONS = ("Page.goto:", "Page.reload:")  # how Playwright names a navigation that timed out


def browser_failure(exc: PlaywrightError) -> ContractError:
    """What a Playwright error means for the request: ``network`` when the site gave no answer (a refused or
    reset connection, a host that does not resolve), ``timeout`` for a navigation that got none in time
    (both :data:`~.blocks.UNANSWERED_KINDS`), ``unloadable`` for an address Chromium refuses (not retried), else
    ``browser_error`` (a crashed or closed page)."""
    said = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)[:200]
    if any(error in said for error in NO_ANSWER_ERRORS):
        return ContractError(said, kind="network")
    if any(error in said for error in UNLOADABLE_ERRORS):
        return ContractError(f"Chromium cannot load it: {said}", kind="unloadable", retryable=False)
    if isinstance(exc, PlaywrightTimeoutError) and said.startswith(NAVIGATIONS):
        return ContractError(said, kind="timeout")
    return ContractError(f"browser error: {said}", kind="browser_error")


# Playwright's word for its driver process gone (Ctrl-C reaches the whole process group, the driver too).
DRIVER_GONE = "Connection closed while reading from the driver"


class _QuietDriverEnd(logging.Filter):
    """Drops asyncio's "Future exception was never retrieved" for the driver's end: Playwright sets that
    exception on a future of its own that no one awaits once it has started, so a Ctrl-C of a crawl or a
    track often printed three lines of it after the ``interrupted:`` line. A driver that dies mid-run fails
    the calls waiting on it all the same, which is where that failure is seen and handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (
            record.getMessage().startswith("Future exception was never retrieved") and str(error) == DRIVER_GONE
        )


logging.getLogger("asyncio").addFilter(_QuietDriverEnd())
