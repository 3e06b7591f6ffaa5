"""``corpus demo``: the whole pipeline, offline, on the bundled replica site.

It starts the replica in-process, then runs the same library stages a user runs against the real site -
crawl (25 seeds, fanout 5) with downloads, validate, export (binary labels), train, report - into a
SQLite corpus under ``--out``. Nothing is special-cased for the demo except the sizes: the training
configuration is CPU-sized (:data:`DEMO_TRAINING`) and printed, so nobody mistakes it for the paper's.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sklearn.metrics import roc_auc_score

from .config import Settings
from .crawl import CrawlOptions, LiveCrawlDisplay, crawl
from .download import run_download
from .errors import ConfigError
from .export import ExportOptions, run_export
from .export_format import read_export
from .replica import Replica, ReplicaConfig
from .report import build_report
from .store.db import open_store, upgrade_database
from .store.status import stage_counts
from .train import TrainConfig, train
from .validate import run_validate

# The paper trains on 32 frames at 112x112 for up to 20 epochs on a GPU; two CPU cores need far less.
DEMO_TRAINING = dict(frames=8, size=16, batch_size=8, epochs=6, patience=3, step_size=4, lr=1e-3)


@dataclass
class DemoResult:
    out_dir: Path
    export_dir: Path
    run_dir: Path
    report: Path
    timings_s: dict[str, float] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    # ROC-AUC of the replica's true frame brightness on the test split: what pixels can give at best.
    pixel_ceiling_auc: float | None = None


def run_demo(out_dir: Path, *, videos: int = 300, signal: float = 1.0, seed: int = 0,
             workers: int = 2, training: dict | None = None, console: Console | None = None) -> DemoResult:
    """Run every stage on a fresh replica of ``videos`` posts; returns where everything is."""
    if videos < 40:
        raise ConfigError(f"--videos must be at least 40 (got {videos}): the crawl needs 25 seeds")
    if not 0.0 <= signal <= 1.0:
        raise ConfigError(f"--signal must be within [0, 1] (got {signal})")
    console = console or Console(stderr=True)
    out_dir = Path(out_dir).resolve()
    timings: dict[str, float] = {}

    def stage(name: str):
        console.rule(f"[bold]{name}")
        return _Timer(timings, name)

    with stage("replica"):
        replica = Replica(ReplicaConfig(videos=videos, seed=seed, signal=signal)).start()
    try:
        settings = Settings(data_dir=out_dir / "data", base_url=replica.base_url)
        upgrade_database(settings)  # the demo's own corpus: a rerun after an upgrade of the tool carries on
        console.print(f"replica site at {replica.base_url} ({videos} posts, signal {signal}); "
                      f"corpus in {settings.data_dir}")
        with stage("crawl + download"), LiveCrawlDisplay(console) as display:
            crawl(settings, CrawlOptions(seeds=25, fanout=5, max_videos=videos, workers=workers,
                                         delay_s=0.0, max_rate=None, seed=seed), progress=display)
        with stage("download (retry what the crawl left)"):
            run_download(settings, retry_failed=True)
        with stage("validate"):
            run_validate(settings)
        with stage("export"):
            export_dir = run_export(settings, ExportOptions(
                label="binary", stratify=True, seed=seed, name="demo",
                command_line=tuple(sys.argv)), console=console)
        config = {**DEMO_TRAINING, **(training or {})}
        with stage("train"):
            console.print("CPU-sized training: " + ", ".join(f"{k}={v}" for k, v in config.items())
                          + " (the paper: frames=32, size=112, epochs=20, on a GPU)")
            run_dir = train(TrainConfig(export_dir=export_dir, device="cpu", seed=seed,
                                        pos_weight="auto", **config))
        with stage("report"):
            report = build_report(settings, export_dir=export_dir, out=out_dir / "report.html")
        ceiling = pixel_ceiling(replica.catalog, export_dir)
        store = open_store(settings)
        try:
            counts = stage_counts(store)
        finally:
            store.dispose()
    finally:
        replica.stop()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return DemoResult(out_dir, export_dir, run_dir, report, timings, counts, metrics, ceiling)


def pixel_ceiling(catalog, export_dir: Path) -> float | None:
    """ROC-AUC of the true brightness (the replica's signal property) against the test labels.

    Only the replica knows it; it tells how much a perfect pixel model could get on this small test
    split, so a model's score is read against the right yardstick rather than against 1.0.
    """
    rows = read_export(export_dir)[1]
    test = rows[rows["split"] == "test"]
    if test["is_viral"].nunique() < 2:
        return None
    luma = {video.id: video.media.luma for video in catalog.videos if video.media is not None}
    return float(roc_auc_score(test["is_viral"], test["video_id"].map(luma)))


class _Timer:
    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> "_Timer":
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.timings[self.name] = time.perf_counter() - self.started


def results_table(result: DemoResult) -> Table:
    """Videos, exclusions, class balance and test ROC-AUC beside the baselines."""
    manifest = json.loads((result.export_dir / "manifest.json").read_text())
    probe = result.counts["stages"]["probe"]
    # "skipped" rows are not videos (photo posts, ads, private items): never downloaded nor probed.
    outcomes = {status: n for status, n in probe.items() if status not in ("valid", "pending", "skipped")}
    viral = manifest["counts"]["is_viral"]
    table = Table(title="demo results", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("videos discovered", str(result.counts["videos"]))
    table.add_row("downloaded", str(result.counts["stages"]["download"].get("downloaded", 0)))
    table.add_row("not videos (photo, ad, private, ...)", str(probe.get("skipped", 0)))
    table.add_row("excluded by validation", f"{sum(outcomes.values())} ({_plain(outcomes)})")
    table.add_row("exported", f"{manifest['row_count']} (viral {viral['1']}, not viral {viral['0']}; "
                              f"splits {_plain(manifest['counts']['split'])})")
    model, baselines = result.metrics["model"], result.metrics["baselines"]
    table.add_row("test ROC-AUC (model)", _auc(model))
    if result.pixel_ceiling_auc is not None:
        table.add_row("test ROC-AUC (true brightness: the most pixels can give here)",
                      f"{result.pixel_ceiling_auc:.3f}")
    for name, values in baselines.items():
        table.add_row(f"test ROC-AUC ({name} baseline)", _auc(values))
    table.add_row("verdict", result.metrics["verdict"])
    for name, seconds in result.timings_s.items():
        table.add_row(f"time: {name}", f"{seconds:.1f} s")
    return table


def _auc(values: dict) -> str:
    auc = values.get("roc_auc")
    return "n/a" if auc is None else f"{auc:.3f}"


def _plain(counts: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items()) or "none"
