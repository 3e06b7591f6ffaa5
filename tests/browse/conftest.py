"""One small real corpus per session for the browse, report and export-format tests: 40 videos of the
shared replica crawled with real Chromium, downloaded, validated, exported (binary, stratified) and a
tiny training run on it (8 frames of 16x16, 1 epoch), the same library stages
``corpus demo`` runs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tiktok_corpus.config import Settings

CORPUS_VIDEOS = 40
TINY_TRAINING = dict(frames=8, size=16, batch_size=8, epochs=1, seed=0, progress=False, device="cpu")


@dataclass(frozen=True)
class DemoCorpus:
    settings: Settings
    export_dir: Path
    run_dir: Path


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory, replica_session) -> DemoCorpus:
    from tiktok_corpus.crawl import CrawlOptions, crawl
    from tiktok_corpus.export import ExportOptions, run_export
    from tiktok_corpus.train import TrainConfig, train
    from tiktok_corpus.validate import run_validate

    replica_session.set_faults({})
    settings = Settings(data_dir=tmp_path_factory.mktemp("browse") / "data", base_url=replica_session.base_url)
    crawl(
        settings,
        CrawlOptions(seeds=10, fanout=5, max_videos=CORPUS_VIDEOS, workers=2, delay_s=0.0, max_rate=None, seed=0),
    )
    run_validate(settings)
    export_dir = run_export(
        settings, ExportOptions(label="binary", stratify=True, seed=0, name="demo", format="webdataset")
    )
    run_dir = train(TrainConfig(export_dir, **TINY_TRAINING))
    return DemoCorpus(settings, export_dir, run_dir)


def copy_of(corpus: DemoCorpus, parent: Path) -> DemoCorpus:
    """The session corpus copied whole (database, media, export, run) to ``parent / "data"``: a test that
    changes the corpus, or writes into its data dir, leaves the one the other tests share as it was."""
    source = corpus.settings.data_dir
    data_dir = parent / "data"
    shutil.copytree(source, data_dir)
    return DemoCorpus(
        Settings(data_dir=data_dir, base_url=corpus.settings.base_url),
        data_dir / corpus.export_dir.resolve().relative_to(source.resolve()),
        data_dir / corpus.run_dir.resolve().relative_to(source.resolve()),
    )
