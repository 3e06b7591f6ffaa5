"""Everything the project assumes about TikTok's web responses, as pure functions.

JSON or HTML in, typed records out; no I/O. TikTok changes often, so every field except the item id is
optional and defaulted, exact ``statsV2`` strings win over rounded ``stats`` numbers, and the older page
layouts (``SIGI_STATE``, ``__NEXT_DATA__``) are still read. Anything that is not a usable answer raises a
typed error: :class:`BlockedError` (bot detection: retry later), :class:`ItemUnavailable` (deleted,
private: final) or :class:`ContractError` (malformed). See docs/tiktok-contract.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from ..errors import BlockedError, ContractError, ItemUnavailable

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
class ItemList:
    items: tuple[ItemRecord, ...]
    has_more: bool = False
    cursor: str | None = None
    skipped: tuple[str, ...] = field(default=())  # reasons for raw entries that could not be parsed


# --- small tolerant readers ---------------------------------------------------------------------


def _int(value: Any) -> int | None:
    """An int from an int, float or digit string; None for anything else (never raises)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value else None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
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


def _parse_json(body: bytes | str | dict | list) -> Any:
    if isinstance(body, (dict, list)):
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = body.strip()
    if not text:
        raise BlockedError("empty response body (bot detection)", kind="empty_body")
    if text.startswith("<"):
        block = detect_block(text)
        raise BlockedError(f"HTML instead of JSON ({block or 'unknown page'})", kind=block or "html_body")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"malformed JSON: {exc.msg} at {exc.pos}", kind="malformed_json") from None


def _raise_for_envelope(data: dict) -> None:
    """Captcha, invalid request, deleted/private: the answers that carry no items."""
    if str(data.get("code", "")) == "10000" or data.get("type") == "verify":
        raise BlockedError("captcha (verify) answer", kind="captcha")
    code = _int(data.get("statusCode", data.get("status_code", 0))) or 0
    if code in UNAVAILABLE_CODES:
        raise ItemUnavailable(f"statusCode {code} ({UNAVAILABLE_CODES[code]})", kind=UNAVAILABLE_CODES[code])
    if code == INVALID_REQUEST:
        raise ContractError("statusCode 10201 (invalid request)", kind="invalid_request", retryable=False)
    if code != OK:
        raise ContractError(f"unexpected statusCode {code}", kind="status_code")


# --- items ------------------------------------------------------------------------------------------


def parse_stats(stats: Any, stats_v2: Any) -> StatsRecord | None:
    """Prefer exact statsV2 strings, per field, over rounded stats."""
    rounded, exact = _dict(stats), _dict(stats_v2)
    if not rounded and not exact:
        return None
    keys = {
        "play_count": "playCount",
        "like_count": "diggCount",
        "comment_count": "commentCount",
        "share_count": "shareCount",
        "collect_count": "collectCount",
        "repost_count": "repostCount",
    }
    values, all_exact = {}, True
    for name, key in keys.items():
        value = _int(exact.get(key))
        if value is None:
            value = _int(rounded.get(key))
            if value is not None:
                all_exact = False
        values[name] = value
    return StatsRecord(**values, exact=bool(exact) and all_exact)


def parse_author(raw: dict) -> AuthorRecord | None:
    """The author, from the modern dict or the older ``author: "uniqueId"`` + ``authorId`` layout."""
    author = raw.get("author")
    stats = _dict(raw.get("authorStatsV2")) or _dict(raw.get("authorStats"))
    rounded = _dict(raw.get("authorStats"))

    def count(key: str) -> int | None:
        value = _int(stats.get(key))
        return value if value is not None else _int(rounded.get(key))

    ident: dict[str, Any]
    if isinstance(author, dict):
        ident = dict(
            id=_str(author.get("id")),
            unique_id=_str(author.get("uniqueId")),
            nickname=_str(author.get("nickname")),
            sec_uid=_str(author.get("secUid")),
            verified=_bool(author.get("verified")),
            private_account=_bool(author.get("privateAccount")),
        )
    elif isinstance(author, str):
        ident = dict(id=_str(raw.get("authorId")), unique_id=author)
    else:
        return None
    if not ident.get("id") and not ident.get("unique_id"):
        return None
    return AuthorRecord(
        **ident,
        follower_count=count("followerCount"),
        following_count=count("followingCount"),
        heart_count=count("heartCount") if count("heartCount") is not None else count("heart"),
        video_count=count("videoCount"),
        digg_count=count("diggCount"),
    )


def parse_hashtags(raw: dict) -> tuple[tuple[str, str | None], ...]:
    """Hashtags from ``challenges`` (with ids) and ``textExtra`` (type 1), lower-cased, de-duplicated."""
    found: dict[str, str | None] = {}
    for challenge in _list(raw.get("challenges")):
        name = _str(_dict(challenge).get("title"))
        if name and name.strip():
            found.setdefault(name.strip().lower(), _str(challenge.get("id")))
    for extra in _list(raw.get("textExtra")):
        extra = _dict(extra)
        name = _str(extra.get("hashtagName"))
        if name and name.strip() and _int(extra.get("type")) == 1:
            found.setdefault(name.strip().lower(), _str(extra.get("hashtagId")) or None)
    return tuple(found.items())


def _is_suspicious(url: str) -> bool:
    """www.tiktok.com/aweme/v1/play/ URLs have returned tiny non-video bodies: try them last."""
    return "/aweme/v1/play/" in url


def media_url_candidates(video: dict) -> tuple[MediaUrl, ...]:
    """Candidate file URLs in the contract's order: h264 gears, playAddr, downloadAddr, other gears.

    bytevc2 gears are never offered (unplayable); duplicates are dropped; ``/aweme/v1/play/`` URLs go last.
    """
    h264: list[MediaUrl] = []
    others: list[MediaUrl] = []
    for gear in _list(video.get("bitrateInfo")):
        gear = _dict(gear)
        codec = (_str(gear.get("CodecType")) or "").lower()
        if "bytevc2" in codec:
            continue
        play = _dict(gear.get("PlayAddr"))
        name = _str(gear.get("GearName")) or "gear"
        size = _int(play.get("DataSize"))
        for url in _list(play.get("UrlList")):
            if isinstance(url, str) and url:
                target = h264 if "h264" in codec or not codec else others
                prefix = "gear" if target is h264 else "other_gear"
                target.append(MediaUrl(f"{prefix}:{name}", url, size, codec or None))
    struct = _dict(video.get("PlayAddrStruct"))
    play_size = _int(struct.get("DataSize")) or _int(video.get("size"))
    plain = []
    for kind, url, size in (
        ("play_addr", video.get("playAddr"), play_size),
        ("download_addr", video.get("downloadAddr"), None),
    ):
        if isinstance(url, str) and url:
            plain.append(MediaUrl(kind, url, size, _str(video.get("codecType"))))
    ordered: list[MediaUrl] = []
    last: list[MediaUrl] = []
    seen: set[str] = set()
    for candidate in (*h264, *plain, *others):
        if candidate.url in seen:
            continue
        seen.add(candidate.url)
        (last if _is_suspicious(candidate.url) else ordered).append(candidate)
    return tuple(ordered + [MediaUrl("aweme_play", c.url, c.data_size, c.codec) for c in last])


def media_urls_json(urls: Iterable[MediaUrl]) -> list[dict]:
    """Candidate URLs as stored on ``videos.media_urls`` (and read back by the downloader).

    Spelled out rather than ``dataclasses.asdict``, whose deep copy cost a millisecond per related list."""
    return [{"kind": url.kind, "url": url.url, "data_size": url.data_size, "codec": url.codec} for url in urls]


def media_urls_from_json(raw: Any) -> tuple[MediaUrl, ...]:
    """``videos.media_urls`` back as records; malformed entries are dropped."""
    found = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("url"), str) and entry["url"]:
            size = entry.get("data_size")
            found.append(
                MediaUrl(
                    str(entry.get("kind") or "url"),
                    entry["url"],
                    size if isinstance(size, int) and size > 0 else None,
                    entry.get("codec"),
                )
            )
    return tuple(found)


def item_kind(raw: dict) -> str:
    if raw.get("imagePost"):
        return "photo"
    if raw.get("liveRoomInfo") or raw.get("isLive"):
        return "live"
    if raw.get("isAd") is True:
        return "ad"
    return "video"


def parse_item(raw: Any) -> ItemRecord:
    """One itemStruct; only ``id`` is mandatory."""
    if not isinstance(raw, dict):
        raise ContractError(f"item is a {type(raw).__name__}, not an object", kind="malformed_item", retryable=False)
    item_id = validate_video_id(raw.get("id"))
    video = _dict(raw.get("video"))
    music = _dict(raw.get("music"))
    duration = _float(video.get("duration"))
    kind = item_kind(raw)
    return ItemRecord(
        id=item_id,
        kind=kind,
        private=bool(raw.get("privateItem") is True or raw.get("secret") is True),
        desc=_str(raw.get("desc")),
        create_time=_int(raw.get("createTime")),
        author=parse_author(raw),
        stats=parse_stats(raw.get("stats"), raw.get("statsV2")),
        hashtags=parse_hashtags(raw),
        music_id=_str(music.get("id")),
        music_title=_str(music.get("title")),
        duration_s=duration if duration else None,
        size=_int(video.get("size")) or _int(_dict(video.get("PlayAddrStruct")).get("DataSize")),
        width=_int(video.get("width")),
        height=_int(video.get("height")),
        codec=_str(video.get("codecType")),
        media_urls=media_url_candidates(video) if kind == "video" else (),
    )


def _parse_items(raw_items: Iterable[Any]) -> tuple[tuple[ItemRecord, ...], tuple[str, ...]]:
    items, skipped = [], []
    for raw in raw_items:
        try:
            items.append(parse_item(raw))
        except ContractError as exc:
            skipped.append(exc.kind)
    return tuple(items), tuple(skipped)


def parse_item_list(body: bytes | str | dict) -> ItemList:
    """A recommend / related / post list envelope.

    An empty body, HTML, a captcha or an envelope without ``itemList`` is a block (retry later); a
    present but empty ``itemList`` is a genuine empty answer.
    """
    data = _parse_json(body)
    if not isinstance(data, dict):
        raise ContractError("item list is not a JSON object", kind="malformed_json")
    _raise_for_envelope(data)
    raw_items = data.get("itemList", data.get("items"))
    if raw_items is None:
        raise BlockedError("item list envelope without itemList (bot detection)", kind="no_item_list")
    items, skipped = _parse_items(_list(raw_items))
    return ItemList(items, has_more=bool(data.get("hasMore")), cursor=_str(data.get("cursor")), skipped=skipped)


def parse_item_detail(body: bytes | str | dict) -> ItemRecord:
    """``/api/item/detail/``: the item, or ItemUnavailable for deleted / private posts."""
    data = _parse_json(body)
    if not isinstance(data, dict):
        raise ContractError("item detail is not a JSON object", kind="malformed_json")
    _raise_for_envelope(data)
    struct = _dict(data.get("itemInfo")).get("itemStruct")
    if struct is None:
        raise BlockedError("item detail without itemInfo.itemStruct", kind="no_item")
    return parse_item(struct)


# --- pages ------------------------------------------------------------------------------------------

_SCRIPT_RE = r'<script[^>]*id="{}"[^>]*>(.*?)</script>'


def _embedded_json(html: str, script_id: str) -> Any | None:
    match = re.search(_SCRIPT_RE.format(re.escape(script_id)), html, re.S)
    if not match:
        return None
    try:
        return json.loads(match.group(1))
    except json.JSONDecodeError:
        raise ContractError(f"malformed JSON in <script id={script_id}>", kind="malformed_json") from None


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


def parse_video_page(html: str, video_id: str | None = None) -> ItemRecord:
    """The item embedded in a video page (rehydration JSON, or the older SIGI_STATE / __NEXT_DATA__)."""
    data = _embedded_json(html, "__UNIVERSAL_DATA_FOR_REHYDRATION__")
    if isinstance(data, dict):
        detail = _dict(_dict(data.get("__DEFAULT_SCOPE__")).get("webapp.video-detail"))
        _raise_for_envelope({"statusCode": detail.get("statusCode", 0)})
        struct = _dict(detail.get("itemInfo")).get("itemStruct")
        if struct is not None:
            return parse_item(struct)
    sigi = _embedded_json(html, "SIGI_STATE")
    if isinstance(sigi, dict):
        _raise_for_envelope({"statusCode": _dict(sigi.get("VideoPage")).get("statusCode", 0)})
        module = _dict(sigi.get("ItemModule"))
        struct = module.get(video_id) if video_id else next(iter(module.values()), None)
        if struct is not None:
            return parse_item(struct)
    nxt = _embedded_json(html, "__NEXT_DATA__")
    if isinstance(nxt, dict):
        info = _dict(_dict(_dict(nxt.get("props")).get("pageProps")).get("itemInfo"))
        if info.get("itemStruct") is not None:
            return parse_item(info["itemStruct"])
    block = detect_block(html)
    if block:
        raise BlockedError(f"video page is a {block} page", kind=block)
    raise ContractError("video page without embedded item JSON (transient)", kind="no_rehydration")


# --- URLs ---------------------------------------------------------------------------------------------

_EXPIRE_PARAM = re.compile(r"[?&]expire=(\d+)(?:[&#]|$)")


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
    return f"{base_url.rstrip('/')}/@{unique_id or '_'}/video/{validate_video_id(video_id)}"


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
