"""Download the files of discovered videos: whole, playable, byte-exact, or not at all.

Input: ``videos`` rows whose ``download_status`` is ``pending`` (with ``retry_failed`` also ``failed``, and
``downloaded`` whose file validate found ``corrupt`` or ``missing_file``: fetched again).
Each claimed video goes through:

1. **Idempotence** - a file already recorded in ``media_files`` whose size and sha256 still match is kept.
2. **HTTP** (:mod:`.transfer`) - the row's candidate URLs in the contract's order (h264 gears, playAddr,
   downloadAddr), each streamed to ``{data_dir}/videos/{id[:2]}/{id}.mp4.{token}.part`` (a token per job)
   with the browser session's cookies (:mod:`.client`), retried on transient kinds only (:mod:`.retry`).
3. **Refresh** (:mod:`.refresh`) - a 403, an expired URL, or no URL left: the item is fetched again
   (video page, which also renews the cookie, then the detail API) and its fresh URLs are tried.
4. **yt-dlp** (:mod:`.ytdlp`) - the last resort, with the same cookies.

A body is accepted only when it passes every check of :mod:`.checks` (status, type, ``ftyp``, every stated
size, a video stream libav can open). Then the ``.part`` is fsynced and renamed, its directory fsynced,
and in the same transaction ``media_files`` is upserted, the row is marked ``downloaded`` and its probe
stage ``pending`` (:mod:`.landing`, statements in :mod:`tiktok_corpus.store.downloads`). A crash
therefore means redo, never half-done. Every attempt is written to ``download_attempts``; a final
failure leaves ``failed`` with a named kind on the row.

:mod:`.run` is the queue: claims, workers, one database thread; :mod:`.fetch` chooses among the ways.
:mod:`.site` says which site steps 3 and 4 go to: the one named, else the one the corpus was crawled from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from .checks import check_size, sniff_body, status_error
    from .jobs import video_file_path
    from .options import DownloadOptions, DownloadSummary
    from .run import download_pending, remove_stale_parts, run_download
    from .site import DownloadSite, download_site

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "checks": ["check_size", "sniff_body", "status_error"],
        "jobs": ["video_file_path"],
        "options": ["DownloadOptions", "DownloadSummary"],
        "run": ["download_pending", "remove_stale_parts", "run_download"],
        "site": ["DownloadSite", "download_site"],
    },
)
