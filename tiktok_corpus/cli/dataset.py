"""Commands over the stored corpus: the schema, the queue's status, exports and the report."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import typer

from ..browse.options import BrowseOptions
from ..export import ExportOptions
from .app import app, console, db_app, err_console, settings_of
from .display import export_summary, progress_bar, status_table
from .options import joined, option_from, seed_option, site_clock, time_origin_option, time_scale_option


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context, revision: str = typer.Argument("head", metavar="[REVISION]", help="Target revision.")
) -> None:
    """Create or migrate the database schema (SQLite or Postgres) to the latest revision.

    On Postgres a migration waits for the locks it needs; where another session holds one (a psql left in
    a transaction, another upgrade), it says which after a few seconds, and goes on once it is let go."""
    from ..store.db import upgrade_database

    settings = settings_of(ctx)
    at = upgrade_database(
        settings, revision, on_lock_wait=lambda line: err_console.print(line, highlight=False, soft_wrap=True)
    )
    behind = "" if revision in ("head", at) else f" ({revision} is older: an upgrade never goes back)"
    console.print(f"{settings.safe_db_url} is at schema {at}{behind}", highlight=False, soft_wrap=True)


@db_app.command("current")
def db_current(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print the revisions as JSON.")
) -> None:
    """Print the database's schema revision and the one this version needs (exit 0 whether or not they
    match; 1 where there is no database)."""
    from ..store.db import database_revision, head_revision, known_revisions

    current, head = database_revision(settings_of(ctx)), head_revision()
    if as_json:
        print(json.dumps({"current": current, "head": head, "up_to_date": current == head}))
        return
    if current == head:
        advice = ""
    elif current is None or current in known_revisions():
        advice = "  (behind: `corpus db upgrade` migrates it)"
    else:
        advice = "  (a newer tiktok-corpus migrated it: upgrade this one)"
    console.print(f"current: {current or 'none'}  head: {head}{advice}", highlight=False, soft_wrap=True)


@app.command()
def status(
    ctx: typer.Context,
    time_scale: float | None = time_scale_option(),
    time_origin: float | None = time_origin_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Counts of videos per stage and status (the work queue at a glance), and who holds the claimed rows:
    a running worker, one gone (its rows go back when the stage next starts), or another host's.

    The tracking queue's "due now" is read on the site's clock: give a fast replica's --time-scale and
    --time-origin, as for `corpus track`.
    """
    from ..store.db import open_store
    from ..store.status import claim_holders, stage_counts
    from ..store.tracking import tracking_counts

    clock = site_clock(time_scale, time_origin)
    with open_store(settings_of(ctx), create=False, reads_only=True) as store:
        counts = stage_counts(store) | {"tracking": tracking_counts(store, now=clock())}
        counts["claims"] = claim_holders(store)
    if as_json:
        typer.echo(json.dumps(counts, sort_keys=True))
        return
    console.print(status_table(counts))


@app.command()
def export(
    ctx: typer.Context,
    labels: str = option_from(ExportOptions, "label", "--labels", "--label", default=...),
    split: str = option_from(ExportOptions, "split", default=joined(ExportOptions.split)),
    group_by: str = option_from(ExportOptions, "group_by", "--group-by"),
    stratify: bool = option_from(ExportOptions, "stratify", "--stratify"),
    split_order: str = option_from(ExportOptions, "split_order", "--split-order"),
    split_gap: str = option_from(ExportOptions, "split_gap_s", "--split-gap", default="0"),
    seed: int = seed_option(ExportOptions),
    data_format: str = option_from(ExportOptions, "format", "--format"),
    shard_size: int | None = option_from(ExportOptions, "shard_size", "--shard-size"),
    min_frames: int = option_from(ExportOptions, "min_frames", "--min-frames"),
    name: str = option_from(ExportOptions, "name"),
    copy_media: bool = option_from(ExportOptions, "copy_media", "--copy-media"),
    as_of: str | None = option_from(ExportOptions, "as_of", "--as-of"),
    normalize_age: bool = option_from(ExportOptions, "normalize_age", "--normalize-age"),
    weights: str = option_from(
        ExportOptions, "weights", "--score-weights", "--weights", default=joined(ExportOptions.weights)
    ),
    threshold_quantile: float = option_from(ExportOptions, "threshold_quantile", "--threshold-quantile"),
    label_fit: str = option_from(ExportOptions, "label_fit", "--label-fit"),
    at_age: str | None = option_from(ExportOptions, "at_age_s", "--at-age"),
    age_tolerance: str | None = option_from(ExportOptions, "age_tolerance_s", "--age-tolerance"),
    as_json: bool = typer.Option(
        False, "--json", help="Print manifest.json, with the export directory as export_dir, instead of the summary."
    ),
) -> None:
    """Write a new, immutable, versioned dataset export with virality labels and splits.

    The last line printed is the export directory (after a one-line summary on stderr).
    """
    from ..durations import parse_duration
    from ..export import parse_numbers, parse_time, read_manifest, run_export

    options = ExportOptions(
        label=labels,
        split=parse_numbers(split, 3, "--split"),
        group_by=group_by,
        stratify=stratify,
        split_order=split_order,
        split_gap_s=parse_duration(split_gap, "--split-gap"),
        seed=seed,
        format=data_format,
        shard_size=shard_size,
        min_frames=min_frames,
        name=name,
        copy_media=copy_media,
        as_of=parse_time(as_of) if as_of else None,
        normalize_age=normalize_age,
        weights=parse_numbers(weights, 4, "--score-weights"),
        threshold_quantile=threshold_quantile,
        label_fit=label_fit,
        at_age_s=parse_duration(at_age, "--at-age") if at_age else None,
        age_tolerance_s=parse_duration(age_tolerance, "--age-tolerance") if age_tolerance is not None else None,
        command_line=tuple(sys.argv),
    )
    with progress_bar(err_console, enabled=not as_json) as bar:
        path = run_export(settings_of(ctx), options, progress=bar)
    manifest = read_manifest(path)
    if as_json:
        typer.echo(json.dumps({"export_dir": str(path), **manifest}))
        return
    err_console.print(
        f"{manifest['name']} v{manifest['version']}: {export_summary(manifest)}", highlight=False, soft_wrap=True
    )
    typer.echo(str(path))


@app.command()
def report(
    ctx: typer.Context,
    export_dir: Path | None = typer.Option(
        None, "--export", help="An export directory whose labels and splits to show (and its newest run)."
    ),
    run_dir: Path | None = typer.Option(
        None, "--run", help="A training run directory to show in the model section (default: the export's newest)."
    ),
    out: str | None = typer.Option(
        None,
        "--out",
        help="HTML file to write (default <data dir>/report/report.html); its PNGs go in <name>_figures/ beside it.",
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Without --export or --run: write over a page that shows a model's results."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the page's and its figures' paths as JSON."),
) -> None:
    """Build the HTML report: the paper's figures and, with a run, the model beside its baselines.

    The last line printed is the HTML file (with --json, a document naming it and its figures' folder). Without
    --export or --run the page has no model section, so it does not replace one that has (the demo's, an earlier
    --export's): that is refused, saying which --export rebuilds it with the model's results, unless --replace is
    given.
    """
    from ..export.runs import export_for_run
    from ..report import build_report
    from ..store.db import open_store
    from ..store.reports import report_figures_dir

    settings, page_path = settings_of(ctx), _html_file(out)
    with open_store(settings, create=False, reads_only=True) as store:
        _warn_of_another_corpus(store, export_for_run(run_dir, export_dir))
    page = build_report(settings, export_dir=export_dir, run_dir=run_dir, out=page_path, replace=replace)
    if as_json:
        typer.echo(json.dumps({"page": str(page), "figures": str(report_figures_dir(page))}, sort_keys=True))
        return
    typer.echo(str(page))


def _html_file(out: str | None) -> Path | None:
    """``--out`` as a path; one written as a folder (``pages/``, ``pages/.``) is refused here, before any
    work: a path drops the slash (and the dot), and the page would be written as a file of that name."""
    if out is None:
        return None
    if os.path.basename(out) in ("", ".", ".."):  # pages/, pages/., ..
        raise typer.BadParameter(
            f"{out} names a folder: name the HTML file to write (e.g. {Path(out) / 'report.html'})", param_hint="--out"
        )
    return Path(out)


@app.command()
def browse(
    ctx: typer.Context,
    export_dir: Path | None = typer.Option(
        None, "--export", help="An export whose labels and splits to show (and its newest run's scores)."
    ),
    run_dir: Path | None = typer.Option(None, "--run", help="A training run whose scores to show instead."),
    host: str = option_from(BrowseOptions, "host"),
    port: int = option_from(BrowseOptions, "port", min=0, max=65535),
    posters: bool = option_from(BrowseOptions, "posters", "--posters/--no-posters"),
) -> None:
    """Serve a local, read-only web app over the corpus until Ctrl-C; the first stdout line is its URL.

    A grid of videos (poster, counts, label, split, score, error; sort and filter), each video's page
    (playback, stats over time, related videos, probe, download attempts), the queue and the report.
    """
    from ..browse import make_posters_in_background, poster_cache_problem
    from ..browse.app import BrowseServer
    from ..browse.catalog import Catalog
    from ..store.db import open_store

    settings = settings_of(ctx)
    with open_store(settings, create=False, reads_only=True) as store:
        catalog = Catalog(store, export_dir, run_dir)
        _warn_of_another_corpus(store, catalog.export_dir)
        server = BrowseServer(settings, store, catalog, host=host, port=port)
        stop_posters = threading.Event()

        def posters_made(made: int, failed: int) -> None:
            gave_none = f"; {failed} file(s) gave none (missing or undecodable)" if failed else ""
            err_console.print(f"poster frames ready: {made}{gave_none}", highlight=False)

        try:
            server.start()
            typer.echo(server.base_url)
            err_console.print(f"serving {settings.safe_db_url} read-only; Ctrl-C stops", highlight=False)
            if posters and (problem := poster_cache_problem(settings.data_dir)) is not None:
                err_console.print(f"no new poster frames: {problem}", highlight=False)
            elif posters:
                make_posters_in_background(settings.data_dir, catalog, stop=stop_posters, done=posters_made)
            server.wait()
        except KeyboardInterrupt:
            pass  # Ctrl-C is how serving ends
        finally:
            stop_posters.set()
            server.stop()


def _warn_of_another_corpus(store, export_dir: Path | None) -> None:
    """Say so when the export shown was made from another corpus (same ids, other videos)."""
    from ..export.runs import another_corpus

    if (warning := another_corpus(store, export_dir)) is not None:
        err_console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
