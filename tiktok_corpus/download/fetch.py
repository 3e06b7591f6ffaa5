"""How one job's file is obtained: HTTP over its candidates, then over refreshed ones, then yt-dlp.

Each way writes the job's ``.part`` file and returns it only once it passed every acceptance check; when
none succeeds, the most telling of their errors is raised. A file over the size limit is final: once a
candidate was too large (and none of the others fitted), neither fresh URLs nor yt-dlp are tried.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from ..config import Settings
from ..errors import DownloadError
from .checks import MediaAcceptance
from .client import has_chain_token, request_headers
from .jobs import CannotWrite, DownloadJob, FetchedFile, PartDirectories
from .options import DownloadOptions
from .refresh import UrlRefresher
from .transfer import HttpTransfers
from .ytdlp import YTDLP_FAILED, YtdlpFallback

log = logging.getLogger(__name__)

# Kinds that say what was wrong with a body: the most useful reason to leave on a failed row.
BODY_KINDS = {"empty", "html_body", "json_body", "not_video", "truncated", "size_mismatch", "corrupt", "too_large"}


class Fetcher:
    """A run's ways of getting files, sharing its client, its check threads and its directories."""

    def __init__(
        self, client: httpx.AsyncClient, settings: Settings, options: DownloadOptions, user_agent: str, concurrency: int
    ) -> None:
        self.client, self.settings, self.options, self.user_agent = client, settings, options, user_agent
        headers = request_headers(settings, user_agent)
        directories = PartDirectories(options.min_free_bytes, options.max_bytes)
        self.accept = MediaAcceptance(options.probe_timeout_s)
        self.http = HttpTransfers(client, headers, options, concurrency, directories, self.accept)
        self.refresher = UrlRefresher(client, settings, options, user_agent)
        self.ytdlp = YtdlpFallback(client, settings, options, headers, directories, self.accept)
        self._bootstrap = asyncio.Lock()
        self._bootstrapped = False

    async def obtain(self, job: DownloadJob) -> FetchedFile:
        """HTTP over the candidates, then over refreshed ones, then yt-dlp; raises the most telling error."""
        await self._ensure_chain_token()
        errors: list[DownloadError] = []
        for round_no in range(self.options.refreshes + 1):
            if round_no:
                try:
                    job.candidates = await self.refresher.fresh_urls(job)
                    job.refreshed = True
                except DownloadError as exc:
                    errors.append(exc)
                    break
            fetched = await self.http.first_accepted(job, errors)
            if fetched is not None:
                return fetched
            if any(error.kind == "too_large" for error in errors):
                raise _final_error(errors)
        if self.options.use_ytdlp:
            try:
                return await self.ytdlp.fetch(job)
            except CannotWrite:
                raise
            except DownloadError as exc:
                errors.append(exc)
        raise _final_error(errors)

    def shutdown(self) -> None:
        """Let the checks in progress finish, then stop the check threads."""
        self.accept.shutdown()

    async def _ensure_chain_token(self) -> None:
        """Without a session cookie, GET the site once (it sets ``tt_chain_token``, as yt-dlp relies on)."""
        async with self._bootstrap:
            if self._bootstrapped or has_chain_token(self.client):
                return
            self._bootstrapped = True
            try:
                await self.client.get(f"{self.settings.base_url}/", headers={"User-Agent": self.user_agent})
            except httpx.HTTPError as exc:  # a 403 later refreshes through the video page, which sets it too
                log.warning("could not get a cookie from %s: %s", self.settings.base_url, exc)


def _final_error(errors: list[DownloadError]) -> DownloadError:
    """The error left on the row: a file too large if one was (it is final), else the last body problem
    if any (it says the most), else the last error but yt-dlp's (the last resort's failure says less than
    why the tries before it failed: a site that is down was reported as "ytdlp_failed"), else that."""
    telling = (
        [e for e in errors if e.kind == "too_large"]
        or [e for e in errors if e.kind in BODY_KINDS]
        or [e for e in errors if e.kind != YTDLP_FAILED]
        or errors
    )
    final = telling[-1] if telling else DownloadError("nothing to try", kind="no_urls")
    trail = ", ".join(e.kind for e in errors[-12:])
    return DownloadError(f"{final.message} (tried: {trail})", kind=final.kind, status=final.status)
