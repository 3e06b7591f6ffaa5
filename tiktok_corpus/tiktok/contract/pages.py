"""Video pages: the item in their embedded rehydration JSON (block pages are told in :mod:`.block_pages`)."""

from __future__ import annotations

from typing import Any

from ...errors import BlockedError, ContractError
from .block_pages import detect_block, script_tags
from .items import _raise_for_envelope, loads_json, parse_item
from .records import ItemRecord, _dict

# Where a rehydration page keeps its post: a photo post's own page (``/@user/photo/id``) has been seen
# keeping it under a scope of its own.
DETAIL_SCOPES = ("webapp.video-detail", "webapp.photo-detail")


def _embedded_json(html: str, script_id: str) -> Any | None:
    if (text := _script_text(html, script_id)) is None:
        return None
    try:
        return loads_json(text)
    except ContractError as exc:
        raise ContractError(f"{exc.message} in <script id={script_id}>", kind="malformed_json") from None


def _script_text(html: str, script_id: str) -> str | None:
    """The text of the first ``<script>`` whose tag carries ``id="script_id"``, None without one or
    its ``</script>`` (a regex over a page of unclosed tags took 33 s at 384 KB)."""
    wanted = f'id="{script_id}"'
    for tag, _, after in script_tags(html):
        if wanted in tag:
            close = html.find("</script>", after)
            return None if close == -1 else html[after:close]
    return None


def parse_video_page(html: str, video_id: str | None = None) -> ItemRecord:
    """The item embedded in a video page (rehydration JSON, or the older SIGI_STATE / __NEXT_DATA__); with
    ``video_id``, a page embedding another item is a ContractError (``wrong_item``), as a detail answer."""
    data = _embedded_json(html, "__UNIVERSAL_DATA_FOR_REHYDRATION__")
    if isinstance(data, dict):
        scope = _dict(data.get("__DEFAULT_SCOPE__"))
        detail = _dict(next((scope[key] for key in DETAIL_SCOPES if key in scope), None))
        _raise_for_envelope({"statusCode": detail.get("statusCode", 0)})
        struct = _dict(detail.get("itemInfo")).get("itemStruct")
        if struct not in (None, {}):  # {}: an answer withheld, as a block does it
            return _page_item(struct, video_id)
    sigi = _embedded_json(html, "SIGI_STATE")
    if isinstance(sigi, dict):
        _raise_for_envelope({"statusCode": _dict(sigi.get("VideoPage")).get("statusCode", 0)})
        module = _dict(sigi.get("ItemModule"))
        struct = module.get(video_id) if video_id else next(iter(module.values()), None)
        if struct not in (None, {}):  # {}: an answer withheld, as a block does it
            return _page_item(struct, video_id)
    nxt = _embedded_json(html, "__NEXT_DATA__")
    if isinstance(nxt, dict):
        props = _dict(_dict(nxt.get("props")).get("pageProps"))
        _raise_for_envelope({"statusCode": props.get("statusCode", 0)})
        info = _dict(props.get("itemInfo"))
        if info.get("itemStruct") not in (None, {}):
            return _page_item(info["itemStruct"], video_id)
    block = detect_block(html)
    if block:
        raise BlockedError(f"video page is a {block} page", kind=block)
    raise ContractError("video page without embedded item JSON (transient)", kind="no_rehydration")


def _page_item(struct: object, video_id: str | None) -> ItemRecord:
    item = parse_item(struct)
    if video_id is not None and item.id != video_id:  # its counts or files would be stored as this video's
        raise ContractError(f"the page of {video_id} embeds item {item.id}", kind="wrong_item")
    return item


# --- URLs ---------------------------------------------------------------------------------------------
