"""Commands that collect the corpus from the site: crawl, download, validate."""

from __future__ import annotations

import json

import typer

from ..config import DEFAULT_BASE_URL
from ..crawl import CrawlOptions
from ..download import DownloadOptions
from ..track.options import TrackOptions
from ..validate import Rules
from .app import app, console, err_console, settings_of
from .display import (
    LiveCrawlDisplay,
    LiveTrackDisplay,
    crawl_summary_lines,
    damaged_files_note,
    download_failed_hint,
    download_summary_line,
    progress_bar,
    track_summary_lines,
    validate_table,
)
from .options import (
    base_url_option,
    option_from,
    proxy_option,
    seed_option,
    site_clock,
    site_settings,
    time_origin_option,
    time_scale_option,
)


@app.command()
def crawl(
    ctx: typer.Context,
    seeds: int = option_from(CrawlOptions, "seeds", min=1),
    fanout: int = option_from(CrawlOptions, "fanout", min=1),
    max_videos: int = option_from(CrawlOptions, "max_videos", min=1),
    strategy: str = option_from(CrawlOptions, "strategy"),
    base_url: str | None = base_url_option("Site to crawl"),
    workers: int = option_from(CrawlOptions, "workers", min=1),
    in_flight: int = option_from(CrawlOptions, "in_flight", min=1),
    delay: float = option_from(CrawlOptions, "delay_s", "--delay", min=0),
    max_rate: float = option_from(CrawlOptions, "max_rate", min=0),
    download: bool = option_from(CrawlOptions, "download", "--download/--no-download"),
    headful: bool = option_from(CrawlOptions, "headful", "--headful"),
    proxy: str | None = proxy_option(),
    seed: int = seed_option(CrawlOptions),
    related_via: str = option_from(CrawlOptions, "related_via", "--related-via"),
    fallback_after: int = option_from(CrawlOptions, "fallback_after", "--fallback-after", min=1),
    max_attempts: int = option_from(CrawlOptions, "max_attempts", "--max-attempts", min=1),
    retry_failed: bool = option_from(CrawlOptions, "retry_failed", "--retry-failed"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Discover videos: For You seeds, then random related-video expansion (the paper's method)."""
    from ..crawl import crawl as run_crawl

    settings = site_settings(ctx, base_url, proxy)
    options = CrawlOptions(
        seeds=seeds,
        fanout=fanout,
        max_videos=max_videos,
        strategy=strategy,
        workers=workers,
        delay_s=delay,
        max_rate=max_rate or None,
        download=download,
        headful=headful,
        seed=seed,
        in_flight=in_flight,
        related_via=related_via,
        fallback_after=fallback_after,
        max_attempts=max_attempts,
        retry_failed=retry_failed,
    )
    options.validate()
    with LiveCrawlDisplay(err_console) as display:
        summary = run_crawl(settings, options, progress=display)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), sort_keys=True, default=str))
        return
    for line in crawl_summary_lines(summary):
        console.print(line, highlight=False)


@app.command()
def track(
    ctx: typer.Context,
    ages: str = option_from(TrackOptions, "ages"),
    follow: bool = option_from(TrackOptions, "follow", "--follow"),
    until: str | None = option_from(TrackOptions, "until"),
    limit: int | None = option_from(TrackOptions, "limit", min=1),
    late_fraction: float = option_from(TrackOptions, "late_fraction", "--late-fraction"),
    base_url: str | None = base_url_option("Site to observe"),
    workers: int = option_from(TrackOptions, "workers", min=1),
    in_flight: int = option_from(TrackOptions, "in_flight", min=1),
    delay: float = option_from(TrackOptions, "delay_s", "--delay", min=0),
    max_rate: float = option_from(TrackOptions, "max_rate", min=0),
    via: str = option_from(TrackOptions, "via"),
    fallback_after: int = option_from(TrackOptions, "fallback_after", "--fallback-after", min=1),
    max_attempts: int = option_from(TrackOptions, "max_attempts", "--max-attempts", min=1),
    headful: bool = option_from(TrackOptions, "headful", "--headful"),
    proxy: str | None = proxy_option(),
    seed: int | None = seed_option(TrackOptions),
    time_scale: float | None = time_scale_option(),
    time_origin: float | None = time_origin_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Re-observe known videos at fixed ages since posting (1h, 6h, 1d, ...), so labels can be taken at one age.

    Each due video is observed once (one request); its snapshot settles every target due, its author's counts beside it.
    Without --follow, takes what is due now and stops. With --follow, sleeps until the next target falls due.
    --until bounds a following run on the site's clock; Ctrl-C stops, and claimed targets go back to the queue.
    """
    from ..track import track as run_track

    clock = site_clock(time_scale, time_origin)
    settings = site_settings(ctx, base_url, proxy)
    options = TrackOptions(
        ages=ages,
        follow=follow,
        until=until,
        limit=limit,
        late_fraction=late_fraction,
        workers=workers,
        in_flight=in_flight,
        delay_s=delay,
        max_rate=max_rate or None,
        via=via,
        fallback_after=fallback_after,
        max_attempts=max_attempts,
        headful=headful,
        seed=seed,
    )
    options.validate()
    with LiveTrackDisplay(err_console) as display:
        summary = run_track(settings, options, clock=clock, progress=display)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), sort_keys=True, default=str))
        return
    for line in track_summary_lines(summary):
        console.print(line, highlight=False)


@app.command()
def download(
    ctx: typer.Context,
    concurrency: int = option_from(DownloadOptions, "concurrency", min=1),
    retry_failed: bool = typer.Option(
        False,
        "--retry-failed",
        help="Also retry failed rows, and fetch again the files validate found corrupt or missing on disk.",
    ),
    limit: int | None = typer.Option(None, min=1, help="At most this many files."),
    max_mb: float = option_from(
        DownloadOptions,
        "max_bytes",
        "--max-mb",
        min=0.001,
        default=DownloadOptions.max_bytes / 1e6,
        help="Refuse files larger than this (MB).",
    ),
    base_url: str | None = base_url_option(
        "Site the corpus was crawled from: URL refreshes and the yt-dlp fallback go there",
        default=f"the latest crawl's, else {DEFAULT_BASE_URL}",
    ),
    proxy: str | None = proxy_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Download pending (and optionally failed or damaged) videos with retries and corruption checks.

    Exits 1 when files were tried and none was obtained (the summary and a hint still printed).
    """
    from ..download import download_site, run_download

    site = download_site(site_settings(ctx, base_url, proxy), given=bool(base_url))
    if site.inherited:
        err_console.print(f"site: {site.base_url} (the crawl's)", highlight=False, soft_wrap=True)
    options = DownloadOptions(concurrency=concurrency, max_bytes=int(max_mb * 1e6))
    with progress_bar(err_console, enabled=not as_json) as bar:
        summary = run_download(site.settings, options, retry_failed=retry_failed, limit=limit, progress=bar)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), sort_keys=True))
    else:
        console.print(download_summary_line(summary), highlight=False)
    if summary.none_obtained:
        err_console.print(download_failed_hint(site), highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def validate(
    ctx: typer.Context,
    min_frames: int = option_from(Rules, "min_frames", min=1),
    min_side: int = option_from(Rules, "min_side", min=1),
    deep: bool = typer.Option(False, "--deep", help="Decode every file fully."),
    workers: int | None = typer.Option(None, min=1, help="Files probed at once (default: cores)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Probe every downloaded file (libav in-process) and mark it valid, too_short or corrupt."""
    from ..validate import run_validate

    with progress_bar(err_console, enabled=not as_json) as bar:
        summary = run_validate(
            settings_of(ctx), min_frames=min_frames, min_side=min_side, deep=deep, workers=workers, progress=bar
        )
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), sort_keys=True))
        return
    console.print(validate_table(summary))
    if note := damaged_files_note(summary):
        console.print(note, highlight=False, soft_wrap=True)
