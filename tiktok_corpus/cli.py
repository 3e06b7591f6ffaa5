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
from typer.core import TyperGroup

from .config import Settings
from .errors import CorpusError, NotImplementedYet

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
            err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(cls=_CorpusGroup, no_args_is_help=True, add_completion=False,
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


def _not_yet(command: str, issue: int) -> None:
    raise NotImplementedYet(f"`corpus {command}` is not implemented yet (issue #{issue})")


# --- db -----------------------------------------------------------------------------------------

@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context,
               revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the database schema (SQLite or Postgres) to the latest revision."""
    from .store import db
    settings = _settings(ctx)
    engine = db.make_engine(settings.db_url)
    try:
        db.upgrade(engine, revision)
        console.print(f"{settings.safe_db_url} is at schema {db.current_revision(engine)}")
    finally:
        engine.dispose()


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's schema revision and the one this version needs."""
    from .store import db
    settings = _settings(ctx)
    engine = db.make_engine(settings.db_url)
    try:
        console.print(f"current: {db.current_revision(engine) or 'none'}  head: {db.head_revision()}")
    finally:
        engine.dispose()


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
          delay: Optional[float] = typer.Option(None, min=0, help="Politeness delay (s, jittered)."),
          no_download: bool = typer.Option(False, "--no-download", help="Only discover; no files."),
          headful: bool = typer.Option(False, "--headful", help="Show the browser (solve a captcha)."),
          proxy: Optional[str] = typer.Option(None, help="Proxy URL (env CORPUS_PROXY)."),
          seed: int = typer.Option(0, help="RNG seed of the frontier policy."),
          as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Discover videos: For You seeds, then random related-video expansion (the paper's method)."""
    _not_yet("crawl", 4)


@app.command()
def download(ctx: typer.Context,
             concurrency: int = typer.Option(8, min=1, help="Files in flight at once."),
             retry_failed: bool = typer.Option(False, "--retry-failed", help="Also retry failed rows."),
             limit: Optional[int] = typer.Option(None, min=1, help="At most this many files.")) -> None:
    """Download pending (and optionally failed) videos with retries and corruption checks."""
    _not_yet("download", 5)


@app.command()
def validate(ctx: typer.Context,
             min_frames: int = typer.Option(100, help="Fewer frames than this: excluded (too_short)."),
             deep: bool = typer.Option(False, "--deep", help="Decode every file fully."),
             workers: Optional[int] = typer.Option(None, min=1, help="Worker processes.")) -> None:
    """Probe every downloaded file with ffprobe and mark it valid, too_short or corrupt."""
    _not_yet("validate", 6)


@app.command()
def export(ctx: typer.Context) -> None:
    """Write a new, immutable, versioned dataset export with virality labels and splits."""
    _not_yet("export", 7)


@app.command()
def report(ctx: typer.Context) -> None:
    """Build the HTML report with the paper's figures."""
    _not_yet("report", 7)


@app.command()
def train(ctx: typer.Context) -> None:
    """Train the R(2+1)D-18 virality model on an export."""
    _not_yet("train", 8)


@app.command()
def predict(ctx: typer.Context) -> None:
    """Score video files with a trained run."""
    _not_yet("predict", 8)


@app.command()
def demo(ctx: typer.Context) -> None:
    """The whole pipeline, offline, on the bundled replica site."""
    _not_yet("demo", 9)


@replica_app.command("serve")
def replica_serve(ctx: typer.Context) -> None:
    """Serve the local TikTok replica site until stopped."""
    _not_yet("replica serve", 3)
