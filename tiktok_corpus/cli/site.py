"""Commands around the bundled replica site: serve it, and run the whole pipeline on it (the demo)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import Progress

from ..replica.config import DEMO_MIN_VIDEOS, ReplicaConfig
from ..replica.signals import DEMO_SIGNALS, format_signals, parse_signals
from .app import app, console, err_console, replica_app
from .display import DemoConsole, ablation_table, demo_results_table
from .options import no_file_in_the_way, option_from, seed_option

SITE_UNITS = (("week", 7 * 86_400), ("day", 86_400), ("hour", 3600), ("minute", 60), ("second", 1))


@app.command()
def demo(
    ctx: typer.Context,
    videos: int = option_from(
        ReplicaConfig, "videos", help=f"Posts in the replica's catalog (at least {DEMO_MIN_VIDEOS})."
    ),
    signals: str = typer.Option(
        format_signals(DEMO_SIGNALS),
        help="How strongly each modality's property carries the appeal that drives engagement, as "
        "MODALITY=STRENGTH,... with strengths in [0, 1]: visual (frame brightness), audio (tone pitch), text "
        "(signal hashtags), author (followers), time (posting hour); 0 or left out = independent of engagement "
        "(the paper's finding). Strengths whose squares add up to 1 or more explain appeal fully.",
    ),
    out: Path = typer.Option(
        Path("corpus-demo"), help="Output directory (corpus, export, runs, report).", callback=no_file_in_the_way
    ),
    seed: int = seed_option(ReplicaConfig, help="Seed of the catalog, crawl, splits and training."),
    epochs: int | None = typer.Option(
        None, min=1, help="Training epochs (default: the demo's CPU-sized configuration)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the results (paths, counts, metrics, ablation, timings) as JSON, not tables."
    ),
) -> None:
    """The whole pipeline, offline, on the bundled replica site: crawl with downloads, validate,
    track a simulated week of growth, export (binary labels), train the paper's network (a CPU-sized
    configuration), the feature tables and the gbdt ablation ("what drives virality"), and the report."""
    from ..demo import run_demo

    result = run_demo(
        out,
        videos=videos,
        signals=parse_signals(signals),
        seed=seed,
        training={"epochs": epochs} if epochs else None,
        display=DemoConsole(err_console),
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), sort_keys=True))
        return
    console.print(demo_results_table(result))
    console.print(ablation_table(result.ablation))
    typer.echo(f"report:  {result.report}")
    typer.echo(f"export:  {result.export_dir}")
    typer.echo(f"metrics: {result.run_dir / 'metrics.json'}")
    typer.echo(f"ablation: {result.ablation_dir}")


@replica_app.command("serve")
def replica_serve(
    ctx: typer.Context,
    host: str = option_from(ReplicaConfig, "host"),
    port: int = option_from(ReplicaConfig, "port", min=0, max=65535),
    videos: int = option_from(ReplicaConfig, "videos", min=1),
    signals: str = option_from(ReplicaConfig, "signals", default=format_signals(ReplicaConfig().signals)),
    seed: int = seed_option(ReplicaConfig),
    fault: list[str] = typer.Option([], "--fault", help="NAME=RATE, repeatable (e.g. --fault empty_body=0.1)."),
    media: bool = option_from(ReplicaConfig, "media", "--media/--no-media"),
    media_scale: int = option_from(ReplicaConfig, "media_scale", "--media-scale"),
    signing: str = option_from(ReplicaConfig, "signing"),
    time_scale: float | None = option_from(ReplicaConfig, "time_scale", "--time-scale"),
    time_origin: float | None = option_from(ReplicaConfig, "time_origin", "--time-origin"),
) -> None:
    """Serve the local TikTok replica site until stopped; the first stdout line is its base URL.

    With --time-scale, stderr also names the site clock, e.g. "site clock: origin 1790000000.0, scale 10080
    (a week per minute)": `corpus track --time-scale 10080 --time-origin 1790000000.0` runs on the same clock.
    """
    from ..replica import Replica
    from ..replica.faults import parse_fault_options

    config = ReplicaConfig(
        videos=videos,
        seed=seed,
        signals=parse_signals(signals),
        faults=parse_fault_options(fault),
        host=host,
        port=port,
        media=media,
        media_scale=media_scale,
        signing=signing,
        time_scale=time_scale,
        time_origin=time_origin,
    )
    progress = Progress(console=err_console, transient=True)
    task = progress.add_task("replica media", total=None)
    replica = Replica(config, on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    try:
        with progress:
            replica.start()  # interrupted, it leaves nothing running; the exit is 130 as for any command
        try:
            typer.echo(replica.base_url)
            if time_scale is not None:
                err_console.print(
                    f"site clock: origin {replica.time_origin!r}, scale {time_scale:g} ({site_speed(time_scale)})",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            err_console.print(
                f"serving {videos} videos (seed {seed}, signals {signals or 'none'}, signing {signing}); Ctrl-C stops"
            )
            replica.wait()
        except KeyboardInterrupt:
            pass  # Ctrl-C is how serving ends
    finally:
        replica.stop()


def site_speed(scale: float) -> str:
    """A site clock's speed in words: ``real time``, ``a week per minute``, ``2.5 hours per minute``."""
    if scale == 1:
        return "real time"
    per_minute = 60 * scale
    name, seconds = next(((name, s) for name, s in SITE_UNITS if per_minute >= s), SITE_UNITS[-1])
    amount = per_minute / seconds
    if amount == 1:
        return f"{'an' if name == 'hour' else 'a'} {name} per minute"
    return f"{amount:.3g} {name}s per minute"
