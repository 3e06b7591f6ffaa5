"""A worker's reads of single items (the tracker's observations), by the method choice of
:mod:`.site_methods`: the detail API in the page (plain or signed), else the video page's own JSON."""

from __future__ import annotations

from .browser import WorkerSession
from .contract import ItemAt, detail_api_path, parse_item_detail_at, parse_video_page
from .site_methods import Answer, MethodChoice, session_method_choice

ItemRead = Answer[ItemAt]
ItemReads = MethodChoice[ItemAt]


def session_item_reads(session: WorkerSession, *, via: str, fallback_after: int) -> ItemReads:
    """Item reads in one worker's browser session, retried under its block policy: one request each
    with ``fetch`` and ``signed`` (the detail API), a page load with ``page``."""

    async def fetch(video_id: str) -> ItemAt:
        return parse_item_detail_at(await session.fetch_text(detail_api_path(video_id)), video_id)

    async def signed(video_id: str) -> ItemAt:
        return parse_item_detail_at(await session.fetch_text(detail_api_path(video_id), signed=True), video_id)

    async def page(video_id: str) -> ItemAt:
        return ItemAt(parse_video_page(await session.video_page(video_id), video_id))

    return session_method_choice(
        session, {"fetch": fetch, "signed": signed, "page": page}, via=via, fallback_after=fallback_after, what="item"
    )


__all__ = ["ItemRead", "ItemReads", "session_item_reads"]
