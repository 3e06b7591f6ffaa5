"""The records parsing yields, the status codes, and the tolerant coercions every parser uses."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ...errors import ContractError

# statusCode values (contract section 3)
OK = 0
INVALID_REQUEST = 10201
PAGE_NOT_FOUND = 10202
ITEM_NOT_FOUND = 10204
PRIVATE_ITEM = 10216
USER_NOT_FOUND = 10221
PRIVATE_ACCOUNT = 10222
UNAVAILABLE_CODES = {
    PAGE_NOT_FOUND: "not_found",
    ITEM_NOT_FOUND: "deleted",
    PRIVATE_ITEM: "private",
    USER_NOT_FOUND: "user_not_found",
    PRIVATE_ACCOUNT: "private_account",
}

MAX_LIST_COUNT = 50  # the recommend API refuses count > 50 with statusCode 10201
ID_CHARS = 32  # TikTok's ids (videos, authors, music, hashtags) are digits; the columns hold this many
_ID_RE = re.compile(rf"^[0-9]{{1,{ID_CHARS}}}$")
# The widest texts the database's bounded columns take (Postgres refuses longer ones, failing the
# whole list's write): a hashtag's name, a codec's, a media URL's kind (``other_gear:<GearName>``).
HASHTAG_CHARS = 256
CODEC_CHARS = 32
URL_KIND_CHARS = 32
# TikTok user names: letters, digits, "." and "_". Anything else is refused before it reaches a URL path.
_UNIQUE_ID_RE = re.compile(r"^[A-Za-z0-9._]{1,64}$")
NEUTRAL_USER = "_"  # /@_/video/{id} resolves like the author's own path
# The widest integers the database columns take: counts and times are BIGINT, pixel sizes INTEGER.
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class MediaUrl:
    """One candidate file URL, in the order the downloader should try them."""

    kind: str  # "gear:<GearName>" | "play_addr" | "download_addr" | "other_gear:<GearName>" | "aweme_play"
    url: str
    data_size: int | None = None
    codec: str | None = None


@dataclass(frozen=True)
class AuthorRecord:
    id: str | None
    unique_id: str | None = None
    nickname: str | None = None
    sec_uid: str | None = None
    verified: bool | None = None
    private_account: bool | None = None
    follower_count: int | None = None
    following_count: int | None = None
    heart_count: int | None = None
    video_count: int | None = None
    digg_count: int | None = None


@dataclass(frozen=True)
class StatsRecord:
    play_count: int | None = None
    like_count: int | None = None
    comment_count: int | None = None
    share_count: int | None = None
    collect_count: int | None = None
    repost_count: int | None = None
    exact: bool = False  # True when every present value came from statsV2


@dataclass(frozen=True)
class ItemRecord:
    """What the crawler stores about one post."""

    id: str
    kind: str = "video"  # video | photo | ad | live
    private: bool = False
    desc: str | None = None
    create_time: int | None = None
    author: AuthorRecord | None = None
    stats: StatsRecord | None = None
    hashtags: tuple[tuple[str, str | None], ...] = ()  # (lower-case name, TikTok challenge id)
    music_id: str | None = None
    music_title: str | None = None
    music_original: bool | None = None  # an "original sound" recorded on TikTok, not licensed music, whatever its title
    duration_s: float | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    media_urls: tuple[MediaUrl, ...] = ()


@dataclass(frozen=True)
class ItemAt:
    """An item and the moment its counts describe on the site's own clock (unix seconds), where the
    answer says (``extra.now``); None where it does not."""

    item: ItemRecord
    site_time: float | None = None


@dataclass(frozen=True)
class ItemList:
    items: tuple[ItemRecord, ...]
    has_more: bool = False
    cursor: str | None = None
    skipped: tuple[str, ...] = field(default=())  # reasons for raw entries that could not be parsed
    site_time: float | None = None  # the moment the counts describe on the site's clock (``extra.now``)


# --- small tolerant readers ---------------------------------------------------------------------


def _int(value: Any, limit: int = INT64_MAX) -> int | None:
    """An int from an int, float or digit string within +-``limit`` (what the column takes); None for
    anything else, an infinity included (never raises).

    A list's items hold a few hundred counts, so the common cases (a JSON int, a digit string) come first
    and the digits are checked with ``str.isdecimal`` (what ``\\d`` matches) rather than a regex."""
    if type(value) is int:
        return value if -limit <= value <= limit else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if -limit <= value <= limit else None
    if isinstance(value, float):
        return _int(int(value), limit) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:  # no count is that long, and int() refuses thousands of digits
            return None
        if (text[1:] if text.startswith("-") else text).isdecimal():
            return _int(int(text), limit)
        try:
            return _int(float(text), limit)
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    """A finite float, or None (an infinity or NaN is no duration)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def validate_video_id(value: Any) -> str:
    """The id as a string of digits, or ContractError: ids become file paths, so nothing else passes."""
    text = _str(value)
    if text is None or not _ID_RE.fullmatch(text.strip()):
        raise ContractError(f"invalid video id {str(value)[:40]!r}: expected digits", kind="bad_id", retryable=False)
    return text.strip()


def valid_id(value: Any) -> str | None:
    """An id other than the item's own (an author's, a sound's, a hashtag's) as digits, else None."""
    text = _str(value)
    return text.strip() if text is not None and _ID_RE.fullmatch(text.strip()) else None


def bounded(value: Any, chars: int) -> str | None:
    """A text a column of ``chars`` characters holds, else None (a value that long is no codec name)."""
    text = _str(value)
    return text if text is not None and len(text) <= chars else None


def valid_unique_id(value: Any) -> str | None:
    """A user name as TikTok spells them (``[A-Za-z0-9._]``, at most 64), else None: it goes into URL paths."""
    text = _str(value)
    return text if text is not None and _UNIQUE_ID_RE.fullmatch(text) else None


def page_user(unique_id: str | None) -> str:
    """The ``@user`` of a post's page path: the author's name when it is a valid one, else the neutral ``_``."""
    return valid_unique_id(unique_id) or NEUTRAL_USER
