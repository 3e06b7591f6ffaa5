"""The browser session as httpx sees it: cookies, User-Agent, Referer, and the client that carries them.

The CDN serves files only to requests that look like the page that listed them (``tt_chain_token``
cookie, the browser's User-Agent, a TikTok Referer). The crawler saves its Playwright session under
``{data_dir}/session/``; without one, GETting any page of the site sets the cookie, as yt-dlp does.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from .config import Settings

DEFAULT_USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/130.0.0.0 Safari/537.36")
CHAIN_TOKEN = "tt_chain_token"


@dataclass(frozen=True)
class BrowserSession:
    """Cookies (Playwright ``storage_state`` dicts) and the User-Agent they were issued to."""

    cookies: tuple[dict, ...] = ()
    user_agent: str = DEFAULT_USER_AGENT


# The crawler's saved browser session, read back by a later `corpus download`.
STATE_FILE, META_FILE = "state.json", "meta.json"


def session_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "session"


def load_saved_session(settings: Settings) -> BrowserSession | None:
    """The crawler's saved session, or None when there is none (or it cannot be read)."""
    state_file, meta_file = session_dir(settings) / STATE_FILE, session_dir(settings) / META_FILE
    try:
        cookies = json.loads(state_file.read_text("utf-8")).get("cookies") or []
    except (OSError, ValueError, AttributeError):
        return None
    try:
        user_agent = json.loads(meta_file.read_text("utf-8")).get("user_agent") or DEFAULT_USER_AGENT
    except (OSError, ValueError, AttributeError):
        user_agent = DEFAULT_USER_AGENT
    return BrowserSession(tuple(c for c in cookies if isinstance(c, dict)), user_agent)


def add_cookies(client: httpx.AsyncClient, cookies: tuple[dict, ...] | list[dict]) -> None:
    """Put Playwright-style cookie dicts into the client's jar, keeping each cookie's domain and path."""
    for cookie in cookies:
        name, value = cookie.get("name"), cookie.get("value")
        if not name or value is None:
            continue
        client.cookies.set(name, str(value), domain=cookie.get("domain") or "", path=cookie.get("path") or "/")


def has_chain_token(client: httpx.AsyncClient) -> bool:
    return any(cookie.name == CHAIN_TOKEN for cookie in client.cookies.jar)


def request_headers(settings: Settings, user_agent: str) -> dict[str, str]:
    """Headers of a browser fetching a video the page referenced; identity encoding keeps sizes exact."""
    return {"User-Agent": user_agent, "Referer": f"{settings.base_url}/", "Range": "bytes=0-",
            "Accept": "*/*", "Accept-Encoding": "identity"}


def make_client(settings: Settings, *, concurrency: int, connect_timeout_s: float,
                read_timeout_s: float) -> httpx.AsyncClient:
    """An HTTP/2-capable client sized for ``concurrency`` transfers, through the configured proxy."""
    return httpx.AsyncClient(
        http2=True, proxy=settings.proxy, follow_redirects=True,
        limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2),
        timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=None))


def write_netscape_cookies(client: httpx.AsyncClient, path: Path) -> Path:
    """The client's cookies as a Netscape cookie file (owner-only) for yt-dlp's ``cookiefile``."""
    jar = http.cookiejar.MozillaCookieJar(str(path))
    for cookie in client.cookies.jar:
        jar.set_cookie(cookie)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    jar.save(ignore_discard=True, ignore_expires=True)
    return path
