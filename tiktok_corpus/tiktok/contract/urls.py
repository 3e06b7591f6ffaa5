"""URLs the site serves and the crawler builds: API paths, page URLs, expiry, redaction."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from .records import MAX_LIST_COUNT, page_user, validate_video_id

_SECRET_PARAMS = {
    "msToken",
    "X-Bogus",
    "X-Gnarly",
    "signature",
    "signaturev3",
    "_signature",
    "verifyFp",
    "tt_chain_token",
}
# A unix time in ASCII digits, as many as a 64-bit one has: 5,000 digits made int() raise, and the
# download try raised with it, its other URLs never tried.
_EXPIRE_PARAM = re.compile(r"[?&]expire=([0-9]{1,19})(?:[&#]|$)")


def url_expiry(url: str) -> int | None:
    """The ``expire=`` unix time in a CDN URL, if any (a regex: it runs before every download try)."""
    match = _EXPIRE_PARAM.search(url.split("#", 1)[0])
    return int(match.group(1)) if match else None


def is_expired(url: str, now: float, margin_s: float = 60.0) -> bool:
    expire = url_expiry(url)
    return expire is not None and expire <= now + margin_s


def redact_url(url: str) -> str:
    """A URL safe to log: signing tokens and signatures masked."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    safe = [(k, "***" if k in _SECRET_PARAMS else v) for k, vs in query.items() for v in vs]
    return urlunsplit(parts._replace(query=urlencode(safe, safe="*")))


def page_url(base_url: str, video_id: str, unique_id: str | None = None) -> str:
    """A video's page; a user name that is not a valid one (read from anywhere) gives the neutral ``/@_/``."""
    return f"{base_url.rstrip('/')}/@{page_user(unique_id)}/video/{validate_video_id(video_id)}"


RELATED_API = "/api/related/item_list/"


def related_api_path(video_id: str, count: int = 16) -> str:
    return (
        f"{RELATED_API}?itemID={validate_video_id(video_id)}&count={min(count, MAX_LIST_COUNT)}"
        "&from_page=video&aid=1988"
    )


def related_list_item_id(url: str) -> str | None:
    """The video whose related list ``url`` asks for (``itemID``), or None when it is no related-list call:
    how a video page's own request for its list is recognised among its traffic."""
    parts = urlsplit(url)
    if not parts.path.endswith(RELATED_API):
        return None
    return parse_qs(parts.query).get("itemID", [None])[0]


def recommend_api_path(count: int = 30) -> str:
    return f"/api/recommend/item_list/?count={min(count, MAX_LIST_COUNT)}&from_page=fyp&aid=1988"


def detail_api_path(video_id: str) -> str:
    return f"/api/item/detail/?itemId={validate_video_id(video_id)}&aid=1988"
