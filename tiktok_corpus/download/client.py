"""The browser session as httpx sees it: cookies, User-Agent, Referer, and the client that carries them.

The CDN serves files only to requests that look like the page that listed them (``tt_chain_token``
cookie, the browser's User-Agent, a TikTok Referer). The crawler's saved session (see
:mod:`tiktok_corpus.tiktok.session_files`) supplies them; without one, GETting any page of the site sets the cookie,
as yt-dlp does.
"""

from __future__ import annotations

import http.cookiejar
import os
from pathlib import Path

import httpx

from ..config import Settings
from ..tiktok.session_files import DEFAULT_USER_AGENT, load_saved_session

CHAIN_TOKEN = "tt_chain_token"


def add_cookies(client: httpx.AsyncClient, cookies: tuple[dict, ...] | list[dict]) -> None:
    """Put Playwright-style cookie dicts into the client's jar, keeping each cookie's domain and path."""
    for cookie in cookies:
        name, value = cookie.get("name"), cookie.get("value")
        if not name or value is None:
            continue
        client.cookies.set(name, str(value), domain=cookie.get("domain") or "", path=cookie.get("path") or "/")


def load_session(
    client: httpx.AsyncClient, settings: Settings, cookies: list[dict] | None, user_agent: str | None
) -> str:
    """Put the browser session's cookies (given, else the crawler's saved ones) into the client; returns the UA."""
    saved = None if cookies is not None else load_saved_session(settings)
    add_cookies(client, cookies if cookies is not None else (saved.cookies if saved else ()))
    return user_agent or (saved.user_agent if saved else DEFAULT_USER_AGENT)


def has_chain_token(client: httpx.AsyncClient) -> bool:
    return any(cookie.name == CHAIN_TOKEN for cookie in client.cookies.jar)


def request_headers(settings: Settings, user_agent: str) -> dict[str, str]:
    """Headers of a browser fetching a video the page referenced; identity encoding keeps sizes exact."""
    return {
        "User-Agent": user_agent,
        "Referer": f"{settings.base_url}/",
        "Range": "bytes=0-",
        "Accept": "*/*",
        "Accept-Encoding": "identity",
    }


def make_client(
    settings: Settings, *, concurrency: int, connect_timeout_s: float, read_timeout_s: float
) -> httpx.AsyncClient:
    """An HTTP/2-capable client sized for ``concurrency`` transfers, through the configured proxy."""
    return httpx.AsyncClient(
        http2=True,
        proxy=settings.proxy,
        follow_redirects=True,
        limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2),
        timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=None),
    )


def write_netscape_cookies(client: httpx.AsyncClient, path: Path) -> Path:
    """The client's cookies as a Netscape cookie file (owner-only) for yt-dlp's ``cookiefile``."""
    jar = http.cookiejar.MozillaCookieJar(str(path))
    for cookie in client.cookies.jar:
        jar.set_cookie(cookie)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    jar.save(ignore_discard=True, ignore_expires=True)
    return path
