"""The site a download run goes to for fresh URLs and the yt-dlp fallback: the one named (``--base-url``,
``CORPUS_BASE_URL``), else the one the corpus was crawled from, as its latest crawl run recorded it."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from ..store.crawl_runs import last_crawl_base_url
from ..store.db import open_store


@dataclass(frozen=True)
class DownloadSite:
    """The run's settings (their base URL the site it goes to) and the site the corpus was crawled from."""

    settings: Settings
    crawled: str | None  # the latest crawl run's base URL; None when no run recorded one
    inherited: bool  # the base URL is the crawl's: nothing named one, and the default was another

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def elsewhere(self) -> bool:
        """The run goes to another site than the one the corpus was crawled from."""
        return self.crawled is not None and self.crawled != self.base_url


def download_site(settings: Settings, *, given: bool) -> DownloadSite:
    """The site for a download over ``settings``' corpus: their base URL when ``given`` (an option or the
    environment named it), else the one the corpus's latest crawl went to, else their default."""
    with open_store(settings, create=False) as store:
        crawled = last_crawl_base_url(store)
    crawled = crawled.rstrip("/") if crawled else None
    if given or crawled is None or crawled == settings.base_url:
        return DownloadSite(settings, crawled, inherited=False)
    return DownloadSite(settings.model_copy(update={"base_url": crawled}), crawled, inherited=True)
