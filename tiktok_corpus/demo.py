"""``corpus demo``: the whole pipeline, offline, on the bundled replica site.

It starts the replica in-process (its posts' properties carrying appeal per ``signals``, see
:mod:`.replica.signals`), then runs the same library stages a user runs against the real site - crawl
(25 seeds, fanout 5) with downloads, validate, track, export (binary labels), train the
paper's network, the feature tables and the gbdt ablation of the modalities, report - into a SQLite
corpus under ``--out``. Nothing is special-cased for the demo except the sizes and the clock: the
training configuration is CPU-sized (:data:`DEMO_TRAINING`) and printed, so nobody mistakes it for the
paper's; and the replica's posts are hours to days old and still growing on a site clock that stands
still until the tracker moves it (:class:`~.clock.VirtualClock`), so a simulated week of growth is
observed in about a minute, each observation exactly at its age.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rich.progress import Progress
from sklearn.metrics import roc_auc_score

from ._files import read_json_object, write_text_durably
from .clock import VirtualClock
from .config import Settings
from .crawl import CrawlOptions, CrawlProgress, crawl
from .download import run_download
from .errors import ConfigError
from .export import ExportOptions, read_export, run_export
from .features import FeatureOptions
from .replica import Catalog, Replica, ReplicaConfig
from .replica.catalog import CATALOG_NOW
from .replica.config import DEMO_MIN_VIDEOS
from .replica.signals import DEMO_SIGNALS, MODALITIES, format_signals, validate_signals
from .report import build_report
from .store.db import open_store, upgrade_database
from .store.status import stage_counts
from .track import TrackOptions, TrackProgress, track
from .train import TrainConfig, ablate, train
from .validate import run_validate

# The paper trains on 32 frames at 112x112 for up to 20 epochs on a GPU; two CPU cores need far less.
DEMO_TRAINING = dict(frames=8, size=16, batch_size=8, epochs=6, patience=3, step_size=4, lr=1e-3)
# The ablation's video embedding reads the same small proxies the demo's training made.
DEMO_FEATURES: dict[str, Any] = dict(frames=8, size=16, clips=2)
# The simulated week: every video observed at these ages (the report's growth curves). The export then
# labels each video by its latest counts, its 7-day observation: the counts `--at-age 7d` would take,
# without that export's early-views baseline, which on the replica's smooth growth curves out-predicts
# any content model; the demo asks which content signal carries virality.
DEMO_TRACKING = TrackOptions(ages="1h,6h,1d,3d,7d", follow=True, until="8d", workers=2, delay_s=0.0, max_rate=None)
# The replica site a demo's --out was crawled from (its --videos, --seed and --signals).
DEMO_SITE_FILE = "demo-site.json"
# The replica names its visual signal after what it is (brightness); the feature stage after its source.
FEATURE_MODALITY = {"visual": "video"}


class DemoDisplay(Protocol):
    """What the demo shows while it runs (the CLI draws it; the library only reports)."""

    def stage(self, name: str) -> None: ...
    def note(self, text: str) -> None: ...
    def crawl_progress(self) -> AbstractContextManager[CrawlProgress | None]: ...
    def track_progress(self) -> AbstractContextManager[TrackProgress | None]: ...
    def progress(self) -> AbstractContextManager[Progress | None]: ...


class _Silent:
    def stage(self, name: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def crawl_progress(self) -> AbstractContextManager[None]:
        return nullcontext()

    def track_progress(self) -> AbstractContextManager[None]:
        return nullcontext()

    def progress(self) -> AbstractContextManager[None]:
        return nullcontext()


@dataclass
class DemoResult:
    out_dir: Path
    export_dir: Path
    run_dir: Path
    ablation_dir: Path
    report: Path
    timings_s: dict[str, float] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    tracking: dict = field(default_factory=dict)  # the track stage's summary: observations, targets by outcome
    metrics: dict = field(default_factory=dict)
    signals: dict[str, float] = field(default_factory=dict)
    # Per modality with a signal: the ROC-AUC of its true latent component on the test split (the oracle).
    oracle_aucs: dict[str, float] = field(default_factory=dict)
    ablation: dict = field(default_factory=dict)  # ablation.json: what drives virality in the demo's corpus

    def to_dict(self) -> dict[str, Any]:
        """Everything the closing tables show, paths as strings (``corpus demo --json``)."""
        return {name: str(value) if isinstance(value, Path) else value for name, value in asdict(self).items()}


def run_demo(
    out_dir: Path,
    *,
    videos: int = ReplicaConfig.videos,
    signals: Mapping[str, float] = DEMO_SIGNALS,
    seed: int = 0,
    workers: int = 2,
    training: dict | None = None,
    display: DemoDisplay | None = None,
) -> DemoResult:
    """Run every stage on a fresh replica of ``videos`` posts whose properties carry ``signals`` (a strength
    per modality, :mod:`.replica.signals`); returns where everything is."""
    if videos < DEMO_MIN_VIDEOS:
        raise ConfigError(
            f"--videos must be at least {DEMO_MIN_VIDEOS} (got {videos}): "
            f"the crawl starts from {CrawlOptions.seeds} seeds"
        )
    strengths = validate_signals(signals)
    display = display or _Silent()
    out_dir = Path(out_dir).resolve()
    _claim_out_dir(out_dir, {"videos": videos, "seed": seed, "signals": strengths})
    timings: dict[str, float] = {}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        display.stage(name)
        started = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - started

    site_clock = VirtualClock(CATALOG_NOW)
    with stage("replica"):
        site = ReplicaConfig(videos=videos, seed=seed, signals=strengths, time_scale=1.0, time_origin=CATALOG_NOW)
        replica = Replica(site, site_clock=site_clock).start()
    try:
        settings = Settings(data_dir=out_dir / "data", base_url=replica.base_url)
        upgrade_database(settings)  # the demo's own corpus: a rerun after an upgrade of the tool carries on
        display.note(
            f"replica site at {replica.base_url} ({videos} posts, signals {format_signals(strengths) or 'none'}); "
            f"corpus in {settings.data_dir}"
        )
        with stage("crawl + download"), display.crawl_progress() as crawl_progress:
            crawl(
                settings,
                CrawlOptions(max_videos=videos, workers=workers, delay_s=0.0, max_rate=None, seed=seed),
                progress=crawl_progress,
            )
        with stage("download (retry what the crawl left)"), display.progress() as progress:
            run_download(settings, retry_failed=True, progress=progress)
        with stage("validate"), display.progress() as progress:
            run_validate(settings, progress=progress)
        with stage("track (a simulated week)"), display.track_progress() as track_progress:
            display.note(f"re-observing each video at every age of {DEMO_TRACKING.ages} still ahead of it")
            tracking = track(settings, DEMO_TRACKING, clock=site_clock, progress=track_progress)
        with stage("export"), display.progress() as progress:
            export_dir = run_export(
                settings,
                ExportOptions(label="binary", stratify=True, seed=seed, name="demo", command_line=tuple(sys.argv)),
                progress=progress,
            )
        config = {**DEMO_TRAINING, **(training or {})}
        with stage("train"):
            display.note(
                "CPU-sized training: "
                + ", ".join(f"{k}={v}" for k, v in config.items())
                + " (the paper: frames=32, size=112, epochs=20, on a GPU)"
            )
            run_dir = train(TrainConfig(export_dir=export_dir, device="cpu", seed=seed, pos_weight="auto", **config))
        oracles = modality_oracles(replica.catalog, export_dir)
        with stage("features + ablation"):
            display.note("features of every modality (random-init video backbone: the demo has no weights)")
            ablation_dir = ablate(
                TrainConfig(export_dir=export_dir, model="gbdt", device="cpu", seed=seed, progress=False),
                FeatureOptions(**DEMO_FEATURES, device="cpu"),
                oracles={FEATURE_MODALITY.get(m, m): auc for m, auc in oracles.items()},
            )
        with stage("report"):
            report = build_report(settings, export_dir=export_dir)  # where `corpus browse` looks for it
        with open_store(settings) as store:
            counts = stage_counts(store)
    finally:
        replica.stop()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    ablation = json.loads((ablation_dir / "ablation.json").read_text())
    return DemoResult(
        out_dir,
        export_dir,
        run_dir,
        ablation_dir,
        report,
        timings,
        counts,
        tracking.to_dict(),
        metrics,
        strengths,
        oracles,
        ablation,
    )


def _claim_out_dir(out_dir: Path, site: dict[str, Any]) -> None:
    """Make ``out_dir`` this demo's, or check it is: a rerun goes on from the corpus there (an
    interrupted demo, an upgraded tool) only when that corpus was crawled from the same replica site;
    another site's corpus would be reported under this run's settings."""
    recorded = out_dir / DEMO_SITE_FILE
    if recorded.is_file():
        previous = read_json_object(recorded)
        if previous != site:
            raise ConfigError(
                f"--out {out_dir} holds a demo corpus of another replica site ({_site_words(previous)}; this run: "
                f"{_site_words(site)}): run with those settings to go on from it, or choose another --out"
            )
        return
    if (out_dir / "data").exists():
        raise ConfigError(f"--out {out_dir} holds a data folder no demo of this version made: choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_durably(recorded, json.dumps(site) + "\n")  # signals in the order --signals takes them


def _site_words(site: dict[str, Any]) -> str:
    signals = format_signals(site.get("signals") or {}) or "none"
    return f"--videos {site.get('videos')} --seed {site.get('seed')} --signals {signals}"


def modality_oracles(catalog: Catalog, export_dir: Path) -> dict[str, float]:
    """Per modality with a signal, the ROC-AUC of its true latent component against the test labels.

    Only the replica knows the components; each tells how much a perfect model of that modality could
    get on this small test split, so a model's score is read against the right yardstick rather than
    against 1.0. Empty when the test split has a single class.
    """
    rows = read_export(export_dir)[1]
    test = rows[rows["split"] == "test"]
    if test["is_viral"].nunique() < 2:
        return {}
    oracles = {}
    for modality in (m for m in MODALITIES if catalog.signals.get(m, 0.0) > 0):
        component = {video.id: video.latents[modality] for video in catalog.videos}
        oracles[modality] = float(roc_auc_score(test["is_viral"], test["video_id"].map(component)))
    return oracles
