"""Items, item lists and item details from the site's JSON: every field but the id optional."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

import orjson

from ...errors import BlockedError, ContractError, ItemUnavailable
from .block_pages import detect_block
from .records import (
    CODEC_CHARS,
    HASHTAG_CHARS,
    INT32_MAX,
    INVALID_REQUEST,
    OK,
    UNAVAILABLE_CODES,
    URL_KIND_CHARS,
    AuthorRecord,
    ItemAt,
    ItemList,
    ItemRecord,
    MediaUrl,
    StatsRecord,
    _bool,
    _dict,
    _float,
    _int,
    _list,
    _str,
    bounded,
    valid_id,
    valid_unique_id,
    validate_video_id,
)

# What no database stores: a lone surrogate (SQLite, Postgres), NUL (Postgres refuses it in text).
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")
_NOT_IN_A_HASHTAG = re.compile(r'[\s,#\[\]"]')
# The latest moment a site's time is taken as one, in milliseconds: 2200-01-01, well inside the
# nanosecond timestamps exports and reports compute in (to April 2262), ages added. A site clock of
# year 2369 (datetime's limit, 9999, was the bound) failed every export at an age and the report.
_MAX_TIME_MS = 7_258_118_400_000


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
    return loads_json(text)


def loads_json(text: str) -> Any:
    """Parse JSON text, or ContractError ``malformed_json``.

    orjson first (json.loads of a related list was the crawler's largest cost per list). It refuses a
    lone surrogate escape, as in a caption whose emoji was cut in half, which the standard parser takes:
    such strings then get U+FFFD in its place (no database stores a lone surrogate), as does an escaped
    NUL (``\\u0000``: Postgres refuses the whole batch of rows that holds one). NaN and infinities stay
    refused, as orjson refuses them."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        refusal = exc
    else:
        if "\\u0000" not in text:  # a raw NUL is no JSON: only its escape
            return value
        try:
            return _storable(value)
        except RecursionError:  # orjson nests deeper than the cleaning's recursion goes
            raise ContractError("malformed JSON: nested too deep", kind="malformed_json") from None
    try:
        return _storable(json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float))
    except (ValueError, RecursionError):
        raise ContractError(f"malformed JSON: {refusal.msg} at {refusal.pos}", kind="malformed_json") from None


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _storable(value: Any) -> Any:
    """``value`` with U+FFFD for every unpaired surrogate and NUL in its strings (keys included)."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_storable(entry) for entry in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(entry) for key, entry in value.items()}
    return value


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


def _count(value: object) -> int | None:
    """A count, or None where the answer holds no count: none is below zero, and a negative one stored
    made the export's labels refuse the whole corpus (and the browser's charts draw nothing)."""
    count = _int(value)
    return count if count is None or count >= 0 else None


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
        value = _count(exact.get(key))
        if value is None:
            value = _count(rounded.get(key))
            if value is not None:
                all_exact = False
        values[name] = value
    return StatsRecord(**values, exact=bool(exact) and all_exact)


def parse_author(raw: dict) -> AuthorRecord | None:
    """The author, from the modern dict or the older ``author: "uniqueId"`` + ``authorId`` layout."""
    author = raw.get("author")
    blocks = (_dict(raw.get("authorStatsV2")), _dict(raw.get("authorStats")))  # exact strings first

    def count(*keys: str) -> int | None:
        return next((value for block in blocks for key in keys if (value := _count(block.get(key))) is not None), None)

    ident: dict[str, Any]
    if isinstance(author, dict):
        ident = dict(
            id=valid_id(author.get("id")),
            unique_id=valid_unique_id(author.get("uniqueId")),
            nickname=_str(author.get("nickname")),
            sec_uid=_str(author.get("secUid")),
            verified=_bool(author.get("verified")),
            private_account=_bool(author.get("privateAccount")),
        )
    elif isinstance(author, str):
        ident = dict(id=valid_id(raw.get("authorId")), unique_id=valid_unique_id(author))
    else:
        return None
    if not ident.get("id") and not ident.get("unique_id"):
        return None
    return AuthorRecord(
        **ident,
        follower_count=count("followerCount"),
        following_count=count("followingCount"),
        # ``heart`` first: a captured author of 6.4 billion hearts had a rounded ``heartCount`` of 2.1
        # billion (wrapped at 2**32), where ``heart`` and both exact strings said 6.4 billion.
        heart_count=count("heart", "heartCount"),
        video_count=count("videoCount"),
        digg_count=count("diggCount"),
    )


def parse_hashtags(raw: dict) -> tuple[tuple[str, str | None], ...]:
    """Hashtags from ``challenges`` (with ids) and ``textExtra`` (type 1), lower-cased, de-duplicated."""
    found: dict[str, str | None] = {}
    for challenge in _list(raw.get("challenges")):
        if name := _hashtag_name(_dict(challenge).get("title")):
            found.setdefault(name, valid_id(challenge.get("id")))
    for extra in _list(raw.get("textExtra")):
        extra = _dict(extra)
        if (name := _hashtag_name(extra.get("hashtagName"))) and _int(extra.get("type")) == 1:
            found.setdefault(name, valid_id(extra.get("hashtagId")))
    return tuple(found.items())


def _hashtag_name(value: Any) -> str | None:
    """The name as stored, stripped of spaces and a leading ``#`` and lower-cased, if its column holds
    it: bounded after lower-casing, which can lengthen it ("İ" becomes two characters). A name with a
    character no hashtag has (a space, ``,``, ``#``, a bracket, a quote: the CSV export's separators)
    is none: read back from a CSV export, "a b" came out as two names and a parquet one's as one."""
    name = bounded((_str(value) or "").strip().lstrip("#").lower(), HASHTAG_CHARS)
    return name if name and not _NOT_IN_A_HASHTAG.search(name) else None


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
                target.append(MediaUrl(_url_kind(f"{prefix}:{name}"), url, size, codec or None))
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
                    _url_kind(str(entry.get("kind") or "url")),  # also those stored before kinds were cut
                    entry["url"],
                    size if isinstance(size, int) and size > 0 else None,
                    entry.get("codec"),
                )
            )
    return tuple(found)


def _url_kind(kind: str) -> str:
    """A media URL's kind as its columns hold it: real gear names run past them (Postgres refused the
    download attempt's row, and with it the run)."""
    return kind[:URL_KIND_CHARS]


def item_kind(raw: dict) -> str:
    if raw.get("imagePost"):
        return "photo"
    if raw.get("liveRoomInfo") or raw.get("isLive"):
        return "live"
    if raw.get("isAd") is True:
        return "ad"
    return "video"


def parse_item(raw: Any) -> ItemRecord:
    """One itemStruct; only ``id`` is mandatory. Whatever else goes wrong reading it is a
    ContractError ``malformed_item`` of this item alone, never an error that ends a list or a crawl."""
    if not isinstance(raw, dict):
        raise ContractError(f"item is a {type(raw).__name__}, not an object", kind="malformed_item", retryable=False)
    item_id = validate_video_id(raw.get("id"))
    try:
        return _item_record(item_id, raw)
    except Exception as exc:  # noqa: BLE001 - any surprise in one item's fields is that item's error
        raise ContractError(
            f"item {item_id} could not be read ({type(exc).__name__})", kind="malformed_item", retryable=False
        ) from exc


def _item_record(item_id: str, raw: dict) -> ItemRecord:
    video = _dict(raw.get("video"))
    music = _dict(raw.get("music"))
    duration = _float(video.get("duration"))
    kind = item_kind(raw)
    return ItemRecord(
        id=item_id,
        kind=kind,
        private=bool(raw.get("privateItem") is True or raw.get("secret") is True),
        desc=_str(raw.get("desc")),
        create_time=_posting_time(raw.get("createTime")),
        author=parse_author(raw),
        stats=parse_stats(raw.get("stats"), raw.get("statsV2")),
        hashtags=parse_hashtags(raw),
        music_id=valid_id(music.get("id")),
        music_title=_str(music.get("title")),
        music_original=_bool(music.get("original")),
        duration_s=duration if duration else None,
        size=_int(video.get("size")) or _int(_dict(video.get("PlayAddrStruct")).get("DataSize")),
        width=_int(video.get("width"), INT32_MAX),
        height=_int(video.get("height"), INT32_MAX),
        codec=bounded(video.get("codecType"), CODEC_CHARS),
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
    present but empty ``itemList`` is a genuine empty answer. An ``itemList`` that is no list, or one none
    of whose entries can be read, is no answer (a changed schema, a hostile reply): taken for an empty
    list, it marked a crawl's parents expanded, childless, for good.
    """
    data = _parse_json(body)
    if not isinstance(data, dict):
        raise ContractError("item list is not a JSON object", kind="malformed_json")
    _raise_for_envelope(data)
    raw_items = data.get("itemList", data.get("items"))
    if raw_items is None:
        raise BlockedError("item list envelope without itemList (bot detection)", kind="no_item_list")
    if not isinstance(raw_items, list):
        raise ContractError(f"itemList is a {type(raw_items).__name__}, not a list", kind="malformed_json")
    items, skipped = _parse_items(raw_items)
    if skipped and not items:
        reasons = ", ".join(sorted(set(skipped)))
        raise ContractError(f"none of the list's {len(skipped)} items can be read ({reasons})", kind="unreadable_list")
    return ItemList(
        items,
        has_more=bool(data.get("hasMore")),
        cursor=_str(data.get("cursor")),
        skipped=skipped,
        site_time=envelope_time(data),
    )


def parse_item_detail(body: bytes | str | dict, video_id: str | None = None) -> ItemRecord:
    """``/api/item/detail/``: the item, or ItemUnavailable for deleted / private posts; with
    ``video_id``, an answer describing another item is a ContractError (``wrong_item``)."""
    return parse_item_detail_at(body, video_id).item


def parse_item_detail_at(body: bytes | str | dict, video_id: str | None = None) -> ItemAt:
    """:func:`parse_item_detail`, with the site's time where the answer carries ``extra.now``."""
    data = _parse_json(body)
    if not isinstance(data, dict):
        raise ContractError("item detail is not a JSON object", kind="malformed_json")
    _raise_for_envelope(data)
    struct = _dict(data.get("itemInfo")).get("itemStruct")
    if struct is None or struct == {}:  # an answer withheld, as a block does it: not a post without an id
        raise BlockedError("item detail without itemInfo.itemStruct", kind="no_item")
    item = parse_item(struct)
    if video_id is not None and item.id != video_id:  # its counts or files would be stored as this video's
        raise ContractError(f"the detail of {video_id} describes item {item.id}", kind="wrong_item")
    return ItemAt(item, envelope_time(data))


def _posting_time(value: object) -> int | None:
    """``createTime`` (unix seconds), or None when it cannot be one: not positive, or past
    :data:`_MAX_TIME_MS` (a millisecond value; a number whose ages would overflow a timestamp)."""
    seconds = _int(value)
    return seconds if seconds is not None and 0 < seconds <= _MAX_TIME_MS // 1000 else None


def envelope_time(data: dict) -> float | None:
    """The site's clock in an answer (``extra.now``, milliseconds), as unix seconds; None if absent or
    past :data:`_MAX_TIME_MS`."""
    now_ms = _int(_dict(data.get("extra")).get("now"))
    return now_ms / 1000 if now_ms and 0 < now_ms <= _MAX_TIME_MS else None


# --- pages ------------------------------------------------------------------------------------------
