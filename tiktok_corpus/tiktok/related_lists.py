"""A worker's related lists (the crawl's expansions), by the method choice of :mod:`.site_methods`."""

from __future__ import annotations

from .browser import WorkerSession
from .contract import ItemList, parse_item_list, related_api_path
from .site_methods import METHODS, Answer, MethodChoice, session_method_choice

RelatedList = Answer[ItemList]
RelatedLists = MethodChoice[ItemList]


def session_related_lists(session: WorkerSession, *, via: str, fallback_after: int, count: int) -> RelatedLists:
    """The related lists (``count`` asked) of one worker's browser session, retried under its block policy."""

    async def fetch(video_id: str) -> ItemList:
        return parse_item_list(await session.fetch_text(related_api_path(video_id, count)))

    async def signed(video_id: str) -> ItemList:
        return parse_item_list(await session.fetch_text(related_api_path(video_id, count), signed=True))

    async def page(video_id: str) -> ItemList:  # the page asks for its own count
        return parse_item_list(await session.video_page_list(video_id))

    return session_method_choice(
        session,
        {"fetch": fetch, "signed": signed, "page": page},
        via=via,
        fallback_after=fallback_after,
        what="related list",
    )


__all__ = ["METHODS", "RelatedList", "RelatedLists", "session_related_lists"]
