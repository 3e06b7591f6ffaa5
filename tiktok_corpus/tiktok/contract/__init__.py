"""Everything the project assumes about TikTok's web responses, as pure functions, in this one package.

JSON or HTML in, typed records out; no I/O. TikTok changes often, so every field except the item id is
optional and defaulted, exact ``statsV2`` strings win over rounded ``stats`` numbers, and the older page
layouts (``SIGI_STATE``, ``__NEXT_DATA__``) are still read. Anything that is not a usable answer raises a
typed error: :class:`BlockedError` (bot detection: retry later), :class:`ItemUnavailable` (deleted,
private: final) or :class:`ContractError` (malformed). See docs/tiktok-contract.md.

:mod:`.records` holds the records and status codes, :mod:`.items` the JSON answers, :mod:`.pages` the
video pages, :mod:`.block_pages` the anti-bot pages, :mod:`.urls` the URLs; callers import from the package.
"""

from .block_pages import (
    LOGIN_MODAL_CLOSE,
    detect_block,
    is_login_wall,
)
from .items import (
    envelope_time,
    item_kind,
    media_url_candidates,
    media_urls_from_json,
    media_urls_json,
    parse_author,
    parse_hashtags,
    parse_item,
    parse_item_detail,
    parse_item_detail_at,
    parse_item_list,
    parse_stats,
)
from .pages import (
    parse_video_page,
)
from .records import (
    INVALID_REQUEST,
    ITEM_NOT_FOUND,
    MAX_LIST_COUNT,
    OK,
    PAGE_NOT_FOUND,
    PRIVATE_ACCOUNT,
    PRIVATE_ITEM,
    UNAVAILABLE_CODES,
    USER_NOT_FOUND,
    AuthorRecord,
    ItemAt,
    ItemList,
    ItemRecord,
    MediaUrl,
    StatsRecord,
    validate_video_id,
)
from .urls import (
    RELATED_API,
    detail_api_path,
    is_expired,
    page_url,
    recommend_api_path,
    redact_url,
    related_api_path,
    related_list_item_id,
    url_expiry,
)

__all__ = [
    "AuthorRecord",
    "ItemAt",
    "envelope_time",
    "parse_item_detail_at",
    "INVALID_REQUEST",
    "ITEM_NOT_FOUND",
    "LOGIN_MODAL_CLOSE",
    "ItemList",
    "ItemRecord",
    "MAX_LIST_COUNT",
    "MediaUrl",
    "OK",
    "PAGE_NOT_FOUND",
    "PRIVATE_ACCOUNT",
    "PRIVATE_ITEM",
    "RELATED_API",
    "StatsRecord",
    "UNAVAILABLE_CODES",
    "USER_NOT_FOUND",
    "detail_api_path",
    "detect_block",
    "is_expired",
    "is_login_wall",
    "item_kind",
    "media_url_candidates",
    "media_urls_from_json",
    "media_urls_json",
    "page_url",
    "parse_author",
    "parse_hashtags",
    "parse_item",
    "parse_item_detail",
    "parse_item_list",
    "parse_stats",
    "parse_video_page",
    "recommend_api_path",
    "redact_url",
    "related_api_path",
    "related_list_item_id",
    "url_expiry",
    "validate_video_id",
]
