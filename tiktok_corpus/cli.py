"""The `corpus` command: a thin typer layer over the library.

Each command builds :class:`Settings`, validates its options and calls one library function.
Expected errors (:class:`CorpusError` with ``expected``) become one line on stderr and a non-zero exit
here, and only here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .config import Settings
from .errors import CorpusError

console = Console()
err_console = Console(stderr=True)


class _CorpusGroup(TyperGroup):
    """Turns expected library errors into one clear line and the error's exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CorpusError as exc:
            if not exc.expected:
                raise
            # Text, not markup: a message may hold brackets ("[/]", IPv6 hosts) that rich would eat.
            err_console.print(Text.assemble(("error:", "bold red"), " ", exc.message), soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


# Locals stay out of tracebacks: they would print database URLs with their passwords.
app = typer.Typer(cls=_CorpusGroup, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False,
                  help="Build research-grade TikTok video datasets and train virality models.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema management.")
replica_app = typer.Typer(no_args_is_help=True, help="The local TikTok replica site (tests, demo).")
app.add_typer(db_app, name="db")
app.add_typer(replica_app, name="replica")


@app.callback()
def _global(ctx: typer.Context,
            db: Optional[str] = typer.Option(None, "--db", help="Database URL (env CORPUS_DB_URL); "
                                             "default sqlite:///<data dir>/corpus.db."),
            data_dir: Optional[Path] = typer.Option(None, "--data-dir",
                                                    help="Where files live (env CORPUS_DATA_DIR; "
                                                    "default ./corpus-data).")) -> None:
    overrides = {k: v for k, v in {"db_url": db, "data_dir": data_dir}.items() if v is not None}
    ctx.obj = Settings(**overrides)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj


# --- db -----------------------------------------------------------------------------------------

@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context,
               revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the database schema (SQLite or Postgres) to the latest revision."""
    from .store.db import upgrade_database
    settings = _settings(ctx)
    at = upgrade_database(settings, revision)
    console.print(f"{settings.safe_db_url} is at schema {at}", highlight=False, soft_wrap=True)


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's schema revision and the one this version needs."""
    from .store.db import database_revision, head_revision
    current = database_revision(_settings(ctx))
    console.print(f"current: {current or 'none'}  head: {head_revision()}", highlight=False, soft_wrap=True)


# --- status -------------------------------------------------------------------------------------

@app.command()
def status(ctx: typer.Context,
           as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON.")) -> None:
    """Counts of videos per stage and status (the work queue at a glance)."""
    from .store.db import open_store
    from .store.status import stage_counts
    store = open_store(_settings(ctx))
    try:
        counts = stage_counts(store)
    finally:
        store.dispose()
    if as_json:
        typer.echo(json.dumps(counts, sort_keys=True))
        return
    table = Table(title=f"{counts['videos']} videos, {counts['edges']} related edges, "
                        f"{counts['stats_snapshots']} stats snapshots")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("videos", justify="right")
    for stage, by_status in counts["stages"].items():
        for name, count in by_status.items():
            table.add_row(stage, name, str(count))
    console.print(table)


# --- stages -------------------------------------------------------------------------------------

@app.command()
def crawl(ctx: typer.Context,
          seeds: int = typer.Option(25, help="Distinct For You videos to start from."),
          fanout: int = typer.Option(5, help="New related videos added per expansion."),
          max_videos: int = typer.Option(7522, help="Stop once the corpus holds this many videos."),
          strategy: str = typer.Option("random", help="Frontier policy: random | bfs."),
          base_url: Optional[str] = typer.Option(None, help="Site to crawl (env CORPUS_BASE_URL)."),
          workers: int = typer.Option(1, min=1, help="Browser workers in this process."),
          in_flight: int = typer.Option(4, min=1, help="Related-list fetches each worker keeps running "
                                        "at once (still paced by --delay and --max-rate)."),
          delay: Optional[float] = typer.Option(None, min=0, help="Politeness delay (s, jittered)."),
          max_rate: float = typer.Option(1.0, min=0, help="Requests per second across all workers "
                                         "of this process (0: no cap)."),
          no_download: bool = typer.Option(False, "--no-download", help="Only discover; no files."),
          headful: bool = typer.Option(False, "--headful", help="Show the browser (solve a captcha)."),
          proxy: Optional[str] = typer.Option(None, help="Proxy URL (env CORPUS_PROXY)."),
          seed: int = typer.Option(0, help="RNG seed of the frontier policy."),
          as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Discover videos: For You seeds, then random related-video expansion (the paper's method)."""
    from .crawl import DEFAULT_DELAY_S, CrawlOptions, LiveCrawlDisplay, crawl as run_crawl, summary_lines
    overrides = {k: v for k, v in {"base_url": base_url, "proxy": proxy}.items() if v is not None}
    settings = Settings(**{**_settings(ctx).model_dump(), **overrides})
    options = CrawlOptions(seeds=seeds, fanout=fanout, max_videos=max_videos, strategy=strategy,
                           workers=workers, delay_s=DEFAULT_DELAY_S if delay is None else delay,
                           max_rate=max_rate or None, download=not no_download, headful=headful, seed=seed,
                           in_flight=in_flight)
    options.validate()
    with LiveCrawlDisplay(err_console) as display:
        summary = run_crawl(settings, options, progress=display)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), sort_keys=True, default=str))
        return
    for line in summary_lines(summary):
        console.print(line, highlight=False)


@app.command()
def download(ctx: typer.Context,
             concurrency: int = typer.Option(8, min=1, help="Transfers in flight at once (files being "
                                             "checked and recorded meanwhile do not count)."),
             retry_failed: bool = typer.Option(False, "--retry-failed", help="Also retry failed rows."),
             limit: Optional[int] = typer.Option(None, min=1, help="At most this many files."),
             max_mb: float = typer.Option(200.0, "--max-mb", min=0.001, help="Refuse files larger than this (MB)."),
             as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Download pending (and optionally failed) videos with retries and corruption checks."""
    from .download import run_download
    summary = run_download(_settings(ctx), concurrency=concurrency, retry_failed=retry_failed, limit=limit,
                           max_bytes=int(max_mb * 1e6), progress=not as_json)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), sort_keys=True))
        return
    failures = ", ".join(f"{kind} {count}" for kind, count in summary.failures.most_common())
    console.print(f"downloaded {summary.downloaded}, already present {summary.verified}, failed {summary.failed}"
                  f"{f' ({failures})' if failures else ''}; {summary.bytes / 1e6:,.1f} MB at "
                  f"{summary.mb_per_s:,.1f} MB/s", highlight=False)


@app.command()
def validate(ctx: typer.Context,
             min_frames: int = typer.Option(100, help="Fewer frames than this: excluded (too_short)."),
             min_side: int = typer.Option(2, help="Narrower or lower frames than this: tiny_frames."),
             deep: bool = typer.Option(False, "--deep", help="Decode every file fully."),
             workers: Optional[int] = typer.Option(None, help="Files probed at once (default: cores)."),
             as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Probe every downloaded file with ffprobe and mark it valid, too_short or corrupt."""
    from .validate import run_validate
    summary = run_validate(_settings(ctx), min_frames=min_frames, min_side=min_side, deep=deep,
                           workers=workers, progress=not as_json)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), sort_keys=True))
        return
    table = Table(title=f"probed {summary.probed}, requeued {summary.requeued}, "
                        f"reclassified {summary.reclassified}")
    table.add_column("outcome")
    table.add_column("videos", justify="right")
    for outcome, count in summary.counts.items():
        table.add_row(outcome, str(count))
    console.print(table)


@app.command()
def export(ctx: typer.Context,
           labels: str = typer.Option(..., "--labels", help="Label the export is made for: binary | continuous."),
           split: str = typer.Option("0.7,0.15,0.15", help="train,val,test fractions (sum 1)."),
           group_by: str = typer.Option("none", "--group-by", help="none | author (no author in two splits)."),
           stratify: bool = typer.Option(False, "--stratify", help="Balance the label across splits."),
           seed: int = typer.Option(0, help="Split seed."),
           data_format: str = typer.Option("parquet", "--format", help="parquet | csv."),
           min_frames: int = typer.Option(100, "--min-frames", help="Leave out videos with fewer frames."),
           name: str = typer.Option("corpus", help="Export name: writes <data dir>/exports/<name>-v<N>/."),
           copy_media: bool = typer.Option(False, "--copy-media", help="Hardlink/copy the videos in."),
           as_of: Optional[str] = typer.Option(None, "--as-of", help="Use the stats snapshot at or before "
                                               "this ISO time (default: the latest)."),
           normalize_age: bool = typer.Option(False, "--normalize-age", help="Labels from per-day rates."),
           weights: str = typer.Option("0.1,0.4,0.3,0.2", help="Score weights: comments,likes,plays,shares."),
           threshold_quantile: float = typer.Option(0.5, "--threshold-quantile",
                                                    help="is_viral: all metrics above this quantile.")) -> None:
    """Write a new, immutable, versioned dataset export with virality labels and splits.

    The last line printed is the export directory.
    """
    import sys

    from .export import ExportOptions, parse_numbers, parse_time, run_export
    options = ExportOptions(
        label=labels, split=parse_numbers(split, 3, "--split"), group_by=group_by, stratify=stratify,
        seed=seed, format=data_format, min_frames=min_frames, name=name, copy_media=copy_media,
        as_of=parse_time(as_of) if as_of else None, normalize_age=normalize_age,
        weights=parse_numbers(weights, 4, "--weights"), threshold_quantile=threshold_quantile,
        command_line=tuple(sys.argv))
    path = run_export(_settings(ctx), options, console=err_console)
    typer.echo(str(path))


@app.command()
def report(ctx: typer.Context,
           export_dir: Optional[Path] = typer.Option(None, "--export", help="An export directory whose "
                                                     "labels and splits to show."),
           out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write (default "
                                              "<data dir>/report/report.html); PNGs go beside it.")) -> None:
    """Build the HTML report with the paper's figures. The last line printed is the HTML file."""
    from .report import build_report
    typer.echo(str(build_report(_settings(ctx), export_dir=export_dir, out=out)))


@app.command()
def train(ctx: typer.Context,
          export_dir: Path = typer.Argument(..., help="Export directory (videos.parquet + manifest.json)."),
          epochs: int = typer.Option(20, min=1, help="Maximum epochs."),
          frames: int = typer.Option(32, min=1, help="Consecutive frames per clip."),
          size: int = typer.Option(112, min=2, help="Frame height and width (even)."),
          batch_size: int = typer.Option(8, min=1, help="Clips per batch (per process under torchrun)."),
          lr: float = typer.Option(1e-3, help="Adam learning rate."),
          step_size: int = typer.Option(7, min=1, help="StepLR: epochs between decays."),
          gamma: float = typer.Option(0.1, help="StepLR: decay factor."),
          patience: int = typer.Option(5, min=1, help="Early stopping: epochs without val improvement."),
          weights: str = typer.Option("none", help="Backbone init: none | kinetics400 | PATH."),
          freeze_backbone: bool = typer.Option(False, "--freeze-backbone", help="Train only the head."),
          device: str = typer.Option("auto", help="auto | cpu | cuda."),
          amp: bool = typer.Option(False, "--amp", help="bf16 autocast (CUDA only)."),
          workers: Optional[int] = typer.Option(None, min=0, help="Data-loader workers "
                                                "(default: 0 on CPU, up to 8 on CUDA)."),
          seed: int = typer.Option(0, help="Seed of init, order, clip starts and dropout."),
          out: Optional[Path] = typer.Option(None, help="Run directory (default EXPORT_DIR/runs/<time>)."),
          resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (or the latest)."),
          pos_weight: str = typer.Option("none", help="BCE class weighting: auto | none."),
          balanced_sampling: bool = typer.Option(False, "--balanced-sampling",
                                                 help="Draw train clips with both classes equally likely."),
          eval_clips: int = typer.Option(1, min=1, help="Evaluation clips per video (1 = centred)."),
          cache_dir: Optional[Path] = typer.Option(None, help="Decoded-proxy cache (default "
                                                   "EXPORT_DIR/cache).")) -> None:
    """Train the R(2+1)D-18 virality model on an export."""
    from .train import TrainConfig, train as train_run
    config = TrainConfig(export_dir=export_dir, epochs=epochs, frames=frames, size=size,
                         batch_size=batch_size, lr=lr, step_size=step_size, gamma=gamma, patience=patience,
                         weights=weights, freeze_backbone=freeze_backbone, device=device, amp=amp,
                         workers=workers, seed=seed, out=out, resume=resume, pos_weight=pos_weight,
                         balanced_sampling=balanced_sampling, eval_clips=eval_clips, cache_dir=cache_dir)
    run_dir = train_run(config)
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        console.print(json.loads(metrics_path.read_text())["verdict"], highlight=False)
        console.print(f"run written to {run_dir} (metrics.json, predictions.parquet, best.pt, figures)")


@app.command()
def predict(ctx: typer.Context,
            videos: list[Path] = typer.Argument(..., help="Video files to score."),
            run: Path = typer.Option(..., "--run", help="A training run directory (with best.pt)."),
            device: str = typer.Option("auto", help="auto | cpu | cuda.")) -> None:
    """Score video files with a trained run: one JSON line each (exit 1 if any file failed)."""
    from .train import predict as predict_videos
    failed = 0
    for result in predict_videos(videos, run, device=device):
        failed += "error" in result
        typer.echo(json.dumps(result))
    if failed:
        raise typer.Exit(1)


@app.command()
def demo(ctx: typer.Context,
         videos: int = typer.Option(300, min=40, help="Posts in the replica's catalog."),
         signal: float = typer.Option(1.0, min=0.0, max=1.0,
                                      help="How strongly a visual property (brightness) drives "
                                      "engagement: 0 = none (the paper's finding), 1 = strong."),
         out: Path = typer.Option(Path("corpus-demo"), help="Output directory (corpus, export, runs, "
                                  "report)."),
         seed: int = typer.Option(0, help="Seed of the catalog, crawl, splits and training."),
         epochs: Optional[int] = typer.Option(None, min=1, help="Training epochs (default: the demo's "
                                              "CPU-sized configuration).")) -> None:
    """The whole pipeline, offline, on the bundled replica site: crawl with downloads, validate,
    export (binary labels), train (a CPU-sized configuration) and report."""
    from .demo import results_table, run_demo
    result = run_demo(out, videos=videos, signal=signal, seed=seed, training={"epochs": epochs} if epochs else None,
                      console=err_console)
    console.print(results_table(result))
    typer.echo(f"report:  {result.report}")
    typer.echo(f"export:  {result.export_dir}")
    typer.echo(f"metrics: {result.run_dir / 'metrics.json'}")


@replica_app.command("serve")
def replica_serve(ctx: typer.Context,
                  host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
                  port: int = typer.Option(0, min=0, max=65535, help="Port; 0 picks a free one."),
                  videos: int = typer.Option(300, min=1, help="Catalog size."),
                  signal: float = typer.Option(0.0, min=0.0, max=1.0,
                                               help="How strongly frame brightness carries appeal."),
                  seed: int = typer.Option(0, help="Catalog and fault RNG seed."),
                  fault: list[str] = typer.Option([], "--fault", help="NAME=RATE, repeatable "
                                                  "(e.g. --fault empty_body=0.1)."),
                  media: bool = typer.Option(True, "--media/--no-media",
                                             help="Make and serve the video files; --no-media serves "
                                             "metadata only (starts at once, for crawling big catalogs).")
                  ) -> None:
    """Serve the local TikTok replica site until stopped; the first stdout line is its base URL."""
    from rich.progress import Progress

    from .replica import Replica, ReplicaConfig
    from .replica.faults import parse_fault_options
    config = ReplicaConfig(videos=videos, seed=seed, signal=signal, faults=parse_fault_options(fault),
                           host=host, port=port, media=media)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("replica media", total=None)
        replica = Replica(config, on_progress=lambda done, total: progress.update(
            task, completed=done, total=total))
        replica.start()
    try:
        typer.echo(replica.base_url)
        err_console.print(f"serving {videos} videos (seed {seed}, signal {signal}); Ctrl-C stops")
        replica.wait()
    except KeyboardInterrupt:
        pass
    finally:
        replica.stop()
