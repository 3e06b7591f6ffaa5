"""Fresh URLs for an item whose URLs or cookie were refused (403), expired, or ran out.

The item is fetched again: its video page first (which also renews the cookie), else the detail API.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ..config import Settings
from ..errors import ContractError, CorpusError, DownloadError
from ..tiktok.contract import (
    ItemRecord,
    MediaUrl,
    detail_api_path,
    page_url,
    parse_item_detail,
    parse_video_page,
    redact_url,
)
from .checks import status_error
from .jobs import NO_ANSWER, THROTTLED, DownloadJob
from .options import DownloadOptions
from .retry import retrying


class UrlRefresher:
    """Fetches an item's current media URLs with the run's client and User-Agent."""

    def __init__(
        self, client: httpx.AsyncClient, settings: Settings, options: DownloadOptions, user_agent: str
    ) -> None:
        self.client, self.settings, self.options, self.user_agent = client, settings, options, user_agent

    async def fresh_urls(self, job: DownloadJob) -> list[MediaUrl]:
        """Fresh URLs for the item: its page (which also renews the cookie), else the detail API.

        Each source is retried on transient answers (5xx, 429, blocks, a page without its JSON);
        ItemUnavailable (deleted, private) propagates: a final, expected outcome.
        """
        page = page_url(self.settings.base_url, job.video_id, job.unique_id)
        sources = (
            (page, lambda body: parse_video_page(body.decode("utf-8", "replace"), job.video_id)),
            (
                self.settings.base_url + detail_api_path(job.video_id),
                lambda body: parse_item_detail(body, job.video_id),
            ),
        )
        reasons: list[str] = []
        for url, parse in sources:
            try:
                record: ItemRecord = await retrying(self.options)(self._fetch_item, url, parse)
            except CorpusError as exc:
                if isinstance(exc, ContractError) and not exc.retryable:
                    raise
                reasons.append(exc.kind)
                continue
            if not record.media_urls:
                raise DownloadError("the refreshed item lists no media URL", kind="no_urls")
            return list(record.media_urls)
        # The site is down, or throttling this address, not the item: say so.
        unanswered, throttled = set(reasons) <= {NO_ANSWER, "timeout"}, set(reasons) == {THROTTLED}
        kind = NO_ANSWER if unanswered else THROTTLED if throttled else "refresh_failed"
        raise DownloadError(f"could not refresh the item ({', '.join(reasons)})", kind=kind)

    async def _fetch_item(self, url: str, parse: Callable[[bytes], ItemRecord]) -> ItemRecord:
        headers = {"User-Agent": self.user_agent, "Referer": f"{self.settings.base_url}/"}
        try:
            response = await self.client.get(url, headers=headers)
        except httpx.TimeoutException:
            raise DownloadError(f"timeout on {redact_url(url)}", kind="timeout", retryable=True) from None
        except httpx.TransportError as exc:
            raise DownloadError(f"{type(exc).__name__} on {redact_url(url)}", kind=NO_ANSWER, retryable=True) from None
        except httpx.HTTPError as exc:  # a redirect loop (to a login page, say), an undecodable body
            raise DownloadError(f"{type(exc).__name__} on {redact_url(url)}", kind="bad_response") from None
        if response.status_code != 200:
            raise status_error(response.status_code, url, self.options.clock(), response.headers.get("retry-after"))
        return parse(response.content)
