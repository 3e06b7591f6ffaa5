"""Commands around the bundled replica site: serve it, and run the whole pipeline on it (the demo)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress

from .app import app, console, err_console, replica_app
from .display import DemoConsole, demo_results_table


@app.command()
def demo(
    ctx: typer.Context,
    videos: int = typer.Option(300, min=40, help="Posts in the replica's catalog."),
    signal: float = typer.Option(
        1.0,
        min=0.0,
        max=1.0,
        help="How strongly a visual property (brightness) drives "
        "engagement: 0 = none (the paper's finding), 1 = strong.",
    ),
    out: Path = typer.Option(Path("corpus-demo"), help="Output directory (corpus, export, runs, report)."),
    seed: int = typer.Option(0, help="Seed of the catalog, crawl, splits and training."),
    epochs: int | None = typer.Option(
        None, min=1, help="Training epochs (default: the demo's CPU-sized configuration)."
    ),
) -> None:
    """The whole pipeline, offline, on the bundled replica site: crawl with downloads, validate,
    export (binary labels), train (a CPU-sized configuration) and report."""
    from ..demo import run_demo

    result = run_demo(
        out,
        videos=videos,
        signal=signal,
        seed=seed,
        training={"epochs": epochs} if epochs else None,
        display=DemoConsole(err_console),
    )
    console.print(demo_results_table(result))
    typer.echo(f"report:  {result.report}")
    typer.echo(f"export:  {result.export_dir}")
    typer.echo(f"metrics: {result.run_dir / 'metrics.json'}")


@replica_app.command("serve")
def replica_serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(0, min=0, max=65535, help="Port; 0 picks a free one."),
    videos: int = typer.Option(300, min=1, help="Catalog size."),
    signal: float = typer.Option(0.0, min=0.0, max=1.0, help="How strongly frame brightness carries appeal."),
    seed: int = typer.Option(0, help="Catalog and fault RNG seed."),
    fault: list[str] = typer.Option([], "--fault", help="NAME=RATE, repeatable (e.g. --fault empty_body=0.1)."),
    media: bool = typer.Option(
        True,
        "--media/--no-media",
        help="Make and serve the video files; --no-media serves "
        "metadata only (starts at once, for crawling big catalogs).",
    ),
    signing: str = typer.Option(
        "none",
        help="What the APIs demand: none, xbogus (frontierSign's X-Bogus) or gnarly (ts + X-Gnarly, which only "
        "the pages' own scripts can make); anything else gets an empty 200.",
    ),
) -> None:
    """Serve the local TikTok replica site until stopped; the first stdout line is its base URL."""
    from ..replica import Replica, ReplicaConfig
    from ..replica.faults import parse_fault_options

    config = ReplicaConfig(
        videos=videos,
        seed=seed,
        signal=signal,
        faults=parse_fault_options(fault),
        host=host,
        port=port,
        media=media,
        signing=signing,
    )
    progress = Progress(console=err_console, transient=True)
    task = progress.add_task("replica media", total=None)
    replica = Replica(config, on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    try:
        with progress:
            replica.start()  # interrupted, it leaves nothing running; the exit is 130 as for any command
        try:
            typer.echo(replica.base_url)
            err_console.print(
                f"serving {videos} videos (seed {seed}, signal {signal}, signing {signing}); Ctrl-C stops"
            )
            replica.wait()
        except KeyboardInterrupt:
            pass  # Ctrl-C is how serving ends
    finally:
        replica.stop()
