"""Commands that learn from an export: its feature tables, train a model, score new videos with it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import ConfigError
from ..features import MODALITIES, FeatureOptions
from ..train import TrainConfig
from ..train.config import options_unused_by, run_dir_for
from .app import app, console, err_console, say_interrupted
from .display import progress_bar
from .options import export_dir_argument, given_on_command_line, no_file_in_the_way, option_from, seed_option

RANDOM_VIDEO_EMBEDDING = "warning: --weights none: the video embedding is a random network's (for tests only)"


LATE_AUTHOR_PROFILE = (
    "warning: the author's profile counts (followers, videos, badge) were read after the videos were posted (a "
    "plain or --as-of export): they hold what each video's own success brought, so part of the author modality's "
    "score may be the label's echo; an --at-age export reads them at posting"
)


AUTHORS_ON_BOTH_SIDES = (
    "warning: {rows} test videos have authors with train videos that may be posted after them (a split "
    "neither --group-by author nor --split-order time): the author's counts tell each author apart, so part of "
    "the author modality's score may be each author's later success; such an export estimates neither new "
    "authors nor later videos"
)


def warn_of_feature_caveats(features: dict) -> None:
    """On stderr, what a feature table's provenance (a run's or an ablation's ``features``) says a reader
    must know: :data:`RANDOM_VIDEO_EMBEDDING`, :data:`LATE_AUTHOR_PROFILE`, :data:`AUTHORS_ON_BOTH_SIDES`."""
    if any(table.get("random_init") for table in features.values()):
        err_console.print(RANDOM_VIDEO_EMBEDDING, highlight=False)
    author = features.get("author", {})
    if author.get("profile_at_posting") is False:
        err_console.print(LATE_AUTHOR_PROFILE, highlight=False, soft_wrap=True)
    if author.get("test_rows_of_train_authors"):
        err_console.print(
            AUTHORS_ON_BOTH_SIDES.format(rows=author["test_rows_of_train_authors"]), highlight=False, soft_wrap=True
        )


@app.command()
def train(
    ctx: typer.Context,
    export_dir: Path = export_dir_argument(),
    model: str = option_from(TrainConfig, "model"),
    modalities: str = option_from(TrainConfig, "modalities"),
    label: str | None = option_from(TrainConfig, "label"),
    rounds: int = option_from(TrainConfig, "rounds", min=1),
    leaves: int = option_from(TrainConfig, "leaves", min=2),
    boost_lr: float = option_from(TrainConfig, "boost_lr"),
    epochs: int = option_from(TrainConfig, "epochs", min=1),
    frames: int = option_from(TrainConfig, "frames", min=1),
    size: int = option_from(TrainConfig, "size", min=2),
    batch_size: int = option_from(TrainConfig, "batch_size", min=1),
    lr: float = option_from(TrainConfig, "lr"),
    lr_scaling: str = option_from(TrainConfig, "lr_scaling"),
    warmup_epochs: int = option_from(TrainConfig, "warmup_epochs", min=0),
    step_size: int = option_from(TrainConfig, "step_size", min=1),
    gamma: float = option_from(TrainConfig, "gamma"),
    patience: int = option_from(TrainConfig, "patience", min=1),
    weights: str = option_from(TrainConfig, "weights"),
    freeze_backbone: bool = option_from(TrainConfig, "freeze_backbone", "--freeze-backbone"),
    device: str = option_from(TrainConfig, "device"),
    amp: bool = option_from(TrainConfig, "amp", "--amp"),
    compile: bool = option_from(TrainConfig, "compile", "--compile"),
    cudnn_benchmark: bool = option_from(TrainConfig, "cudnn_benchmark", "--cudnn-benchmark"),
    workers: int | None = option_from(TrainConfig, "workers", min=0),
    seed: int = seed_option(TrainConfig),
    out: Path | None = option_from(TrainConfig, "out", callback=no_file_in_the_way),
    resume: bool = option_from(TrainConfig, "resume", "--resume"),
    pos_weight: str = option_from(TrainConfig, "pos_weight"),
    balanced_sampling: bool = option_from(TrainConfig, "balanced_sampling", "--balanced-sampling"),
    eval_clips: int = option_from(TrainConfig, "eval_clips", min=1),
    cache_dir: Path | None = option_from(TrainConfig, "cache_dir", callback=no_file_in_the_way),
    as_json: bool = typer.Option(
        False, "--json", help="Print metrics.json, with the run directory as run_dir, instead of the summary."
    ),
) -> None:
    """Train a virality model on an export: the paper's R(2+1)D-18 (default), LightGBM on the feature
    tables (--model gbdt, minutes on a CPU), or both fused (--model fusion).

    gbdt and fusion compute the feature tables they need first (cached beside the export; see
    `corpus features`)."""
    from ..speed import speed_line
    from ..train import train as train_run
    from ..train.loop import reports_results
    from ..train.metrics import main_metric_line

    # A resume without --model trains the saved run's model, whose own options check_resume compares.
    unused = () if resume and not given_on_command_line(ctx, "model") else options_unused_by(model)
    for name in unused:
        if given_on_command_line(ctx, name):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} does not apply to --model {model} (it would be recorded as if it had been used)")
    config = TrainConfig(
        export_dir=export_dir,
        model=model,
        modalities=modalities,
        label=label,
        rounds=rounds,
        leaves=leaves,
        boost_lr=boost_lr,
        epochs=epochs,
        frames=frames,
        size=size,
        batch_size=batch_size,
        lr=lr,
        lr_scaling=lr_scaling,
        warmup_epochs=warmup_epochs,
        step_size=step_size,
        gamma=gamma,
        patience=patience,
        weights=weights,
        freeze_backbone=freeze_backbone,
        device=device,
        amp=amp,
        compile=compile,
        cudnn_benchmark=cudnn_benchmark,
        workers=workers,
        seed=seed,
        out=out,
        resume=resume,
        pos_weight=pos_weight,
        balanced_sampling=balanced_sampling,
        eval_clips=eval_clips,
        cache_dir=cache_dir,
        given_options=frozenset(name for name in ctx.params if given_on_command_line(ctx, name)),
    )
    config.out = run_dir = run_dir_for(config)  # named now, so that an interrupted run can say where it is
    try:
        train_run(config)
    except KeyboardInterrupt:
        if (run_dir / "last.pt").is_file():
            hint = (
                f"{run_dir} keeps its last finished epoch; `corpus train {export_dir} --resume --out {run_dir}` "
                "goes on from it"
            )
        elif model == "gbdt":  # in its feature tables: a gbdt run has no epochs to keep
            hint = (
                "the feature tables finished so far are cached, and the video embedding's rows made so far; "
                "the same command starts again from them"
            )
        else:  # in the feature tables, the proxies or the first epoch
            made = "proxies" if model == "r2plus1d" else "feature tables and proxies"
            hint = f"no epoch was kept; the {made} made so far are cached, and the same command starts again from them"
        say_interrupted(ctx, hint)
        raise
    metrics_path = run_dir / "metrics.json"
    if reports_results() and metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        warn_of_feature_caveats(metrics["run"].get("features", {}))  # on stderr, --json or not
        if as_json:
            typer.echo(json.dumps({"run_dir": str(run_dir), **metrics}, indent=2))
            return
        console.print(main_metric_line(metrics), highlight=False)
        console.print(metrics["verdict"], highlight=False)
        if "speed" in metrics:  # the network's runs; gbdt has no training pass to time
            console.print(speed_line(metrics["speed"]), highlight=False)
        console.print(f"run written to {run_dir} (metrics.json, predictions.parquet, the model, figures)")


@app.command()
def ablate(
    ctx: typer.Context,
    export_dir: Path = export_dir_argument(),
    modalities: str = option_from(
        TrainConfig,
        "modalities",
        help="Modalities the ablation takes apart (each alone, all but one, all), comma-separated.",
    ),
    label: str | None = option_from(TrainConfig, "label"),
    rounds: int = option_from(TrainConfig, "rounds", min=1),
    leaves: int = option_from(TrainConfig, "leaves", min=2),
    boost_lr: float = option_from(TrainConfig, "boost_lr"),
    device: str = option_from(TrainConfig, "device"),
    seed: int = seed_option(TrainConfig, help="Seed of the gbdt models and of the permutation importances' shuffles."),
    backbone: str = option_from(FeatureOptions, "backbone"),
    weights: str = option_from(FeatureOptions, "weights"),
    clips: int = option_from(FeatureOptions, "clips", min=1),
    frames: int = option_from(FeatureOptions, "frames", min=1),
    size: int = option_from(FeatureOptions, "size", min=2),
    out: Path | None = typer.Option(
        None, help="Where to write (default EXPORT_DIR/ablations/<time>).", callback=no_file_in_the_way
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print ablation.json, with its directory as ablation_dir (absolute; figure is a file in it), "
        "instead of the table.",
    ),
) -> None:
    """What drives virality in this corpus: a gbdt model per modality alone, all but one, and all.

    Each line has its test metric with a 95% interval and the verdict against the baselines;
    the all-modality model adds LightGBM gain and permutation importance per modality. Writes
    ablation.json and ablation.png (the report shows them). The feature tables are those of
    that `corpus train --model gbdt` reads - the export's own (`corpus features`), else the extractors'
    defaults -, with the settings given here among --backbone, --weights, --clips, --frames and --size
    (made here when missing)."""
    from ..train import ablate as run_ablation
    from .display import ablation_table

    config = TrainConfig(
        export_dir=export_dir,
        model="gbdt",
        modalities=modalities,
        label=label,
        rounds=rounds,
        leaves=leaves,
        boost_lr=boost_lr,
        device=device,
        seed=seed,
        progress=not as_json,
    )
    # The tables a gbdt run takes, but for the settings given here, so that the two agree (tables made here
    # of the defaults were then the newest, and the next run, reading the newest, took them up).
    given = frozenset(
        name for name in ("backbone", "weights", "clips", "frames", "size") if given_on_command_line(ctx, name)
    )
    features = FeatureOptions(
        backbone=backbone, weights=weights, clips=clips, frames=frames, size=size, reuse_cached=True, pinned=given
    )
    run_dir = run_ablation(config, features, out=out)
    result = json.loads((run_dir / "ablation.json").read_text())
    warn_of_feature_caveats(result["features"])  # on stderr, --json or not
    if as_json:
        typer.echo(json.dumps({"ablation_dir": str(run_dir.resolve()), **result}, indent=2))
        return
    console.print(ablation_table(result))
    console.print(f"ablation written to {run_dir} (ablation.json, ablation.png)")


@app.command()
def predict(
    ctx: typer.Context,
    videos: list[Path] = typer.Argument(..., metavar="VIDEO...", help="Video files to score."),
    run: Path = typer.Option(
        ..., "--run", help="A run of the paper's network (corpus train, --model r2plus1d), not a gbdt or fusion run."
    ),
    device: str = option_from(TrainConfig, "device"),
    as_json: bool = typer.Option(
        False, "--json", help="Errors that stop the command (a bad --run) as a JSON document on stdout too."
    ),
) -> None:
    """Score video files with a trained run: one JSON line each (exit 1 if any file failed)."""
    from ..train.predict import predict as predict_videos

    if (run / "best.pt").is_file() and not (run / "metrics.json").is_file():
        err_console.print(
            f"warning: {run} stopped before its report (no metrics.json): scores only, no labels",
            highlight=False,
            soft_wrap=True,
        )
    failed = 0
    for result in predict_videos(videos, run, device=device):
        failed += "error" in result
        typer.echo(json.dumps(result))
    if failed:
        raise typer.Exit(1)


@app.command()
def features(
    ctx: typer.Context,
    export_dir: Path = export_dir_argument(),
    modalities: str = option_from(FeatureOptions, "modalities", default=",".join(MODALITIES)),
    backbone: str = option_from(FeatureOptions, "backbone"),
    weights: str = option_from(FeatureOptions, "weights"),
    clips: int = option_from(FeatureOptions, "clips", min=1),
    frames: int = option_from(FeatureOptions, "frames", min=1),
    size: int = option_from(FeatureOptions, "size", min=2),
    text_components: int = option_from(FeatureOptions, "text_components", min=1),
    device: str = option_from(FeatureOptions, "device"),
    batch_size: int = option_from(FeatureOptions, "batch_size", min=1),
    workers: int | None = option_from(FeatureOptions, "workers", min=1),
    cache_dir: Path | None = option_from(FeatureOptions, "cache_dir", callback=no_file_in_the_way),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Per-video feature tables for each modality, cached in EXPORT_DIR/features (a rerun reuses them)."""
    from ..features import extract_features

    options = FeatureOptions(
        modalities=tuple(modalities.split(",")),
        backbone=backbone,
        weights=weights,
        clips=clips,
        frames=frames,
        size=size,
        text_components=text_components,
        device=device,
        batch_size=batch_size,
        workers=workers,
        cache_dir=cache_dir,
        progress=not as_json,
    )
    try:
        with progress_bar(err_console, enabled=not as_json) as bar:
            summary = extract_features(export_dir, options, progress=bar)
    except KeyboardInterrupt:
        say_interrupted(
            ctx,
            "the tables finished so far are cached, and the video embedding's rows made so far; the same "
            "command goes on from there",
        )
        raise
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), sort_keys=True))
        return
    console.print(f"{summary.rows} videos of {summary.export_dir}", highlight=False)
    for result in summary.results:
        source = "cached" if result.cache_hit else f"computed in {result.seconds:.1f} s"
        details = "".join(f"; {name.replace('_', ' ')} {value}" for name, value in result.details.items())
        console.print(
            f"  {result.modality:<7} {result.columns:>4} columns, {source}{details}: {result.cache_file}",
            highlight=False,
        )
    if summary.random_init:
        err_console.print(RANDOM_VIDEO_EMBEDDING, highlight=False)
