"""The records parsing yields, the status codes, and the tolerant coercions every parser uses."""

from __future__ import annotations

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
_ID_RE = re.compile(r"^[0-9]{1,32}$")


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
    duration_s: float | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    media_urls: tuple[MediaUrl, ...] = ()

    @property
    def downloadable(self) -> bool:
        return self.kind == "video" and not self.private and bool(self.media_urls)

    @property
    def page_path(self) -> str:
        user = self.author.unique_id if self.author and self.author.unique_id else "_"
        return f"/@{user}/{'photo' if self.kind == 'photo' else 'video'}/{self.id}"


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


def _int(value: Any) -> int | None:
    """An int from an int, float or digit string; None for anything else (never raises).

    A list's items hold a few hundred counts, so the common cases (a JSON int, a digit string) come first
    and the digits are checked with ``str.isdecimal`` (what ``\\d`` matches) rather than a regex."""
    if type(value) is int:
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value else None
    if isinstance(value, str):
        text = value.strip()
        if (text[1:] if text.startswith("-") else text).isdecimal():
            return int(text)
        try:
            return int(float(text))
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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


def detect_block(html: str) -> str | None:
    """Name the anti-bot page an HTML body is, or None: waf | captcha | login | error_panel."""
    head = html[:200_000]
    if "_wafchallengeid" in head or 'id="wci"' in head:
        return "waf"
    if "captcha-verify" in head or "Verify to continue" in head or "captcha_container" in head:
        return "captcha"
    if 'data-e2e="modal-close-inner-button"' in head and "login" in head.lower() or "/login?" in head[:2000]:
        return "login"
    if "Something went wrong" in head and "Refresh" in head:
        return "error_panel"
    return None
