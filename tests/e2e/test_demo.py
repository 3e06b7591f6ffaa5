"""The newcomer's first command, end to end: a small `corpus demo` leaves every artefact behind."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from tiktok_corpus import cli
from tiktok_corpus.cli.display import ablation_table, demo_results_table
from tiktok_corpus.config import Settings
from tiktok_corpus.demo import DemoResult
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.models import MediaFile, RelatedEdge, StatsSnapshot, Video
from tiktok_corpus.store.reports import REPORT_PAGE

pytestmark = pytest.mark.slow(50)


def test_small_demo_produces_corpus_export_metrics_and_report(tmp_path):
    out = tmp_path / "demo"

    result = CliRunner().invoke(cli.app, ["demo", "--videos", "60", "--epochs", "1", "--out", str(out), "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout is the JSON alone: the stages' display went to stderr
    data = out / "data"
    store = open_store(Settings(data_dir=data))
    try:
        with store.sessions() as session:
            videos = session.scalars(select(Video)).all()
            files = session.scalars(select(MediaFile)).all()
            edges = session.scalars(select(RelatedEdge)).all()
            snapshots = session.scalars(select(StatsSnapshot).where(StatsSnapshot.source == "track")).all()
    finally:
        store.dispose()
    assert sum(v.source == "foryou" and v.item_kind == "video" for v in videos) == 25  # ads and photos: no seeds
    assert edges and all(e.rank >= 0 for e in edges)
    downloadable = [v for v in videos if v.item_kind == "video" and v.download_status != "skipped"]
    assert downloadable and all(v.download_status == "downloaded" for v in downloadable)
    assert len(files) == len(downloadable)
    assert all((data / f.path).stat().st_size == f.size_bytes for f in files)
    assert {v.probe_status for v in downloadable} <= {"valid", "too_short", "corrupt", "no_video"}
    # The posts were young and growing: each was re-observed at every age of the simulated week still
    # ahead of it (a deleted post's read says gone), each observation a stats snapshot of its own.
    tracking = summary["tracking"]
    assert tracking["status"] == "until_reached" and set(tracking["outcomes"]) <= {"observed", "gone"}
    assert tracking["observations"] == tracking["outcomes"]["observed"] == len(snapshots) > len(downloadable)

    export_dir = data / "exports" / "demo-v1"
    manifest = json.loads((export_dir / "manifest.json").read_text())
    rows = pd.read_parquet(export_dir / "videos.parquet")
    assert manifest["label"] == "binary" and manifest["row_count"] == len(rows) > 0
    assert set(rows["split"]) <= {"train", "val", "test"}
    # Every label comes from the video's latest counts: its observation at 7 days of age.
    age = rows["stats_captured_at"] - pd.to_datetime(rows["create_time"], unit="s", utc=True)
    assert (age == pd.Timedelta(days=7)).all(), age.value_counts()
    card = (export_dir / "README.md").read_text()
    assert card.startswith("---\n") and "\n---\n# demo v1" in card  # the Hub's YAML header, then the card
    assert all((export_dir / f).exists() for f in rows["file"])

    (run_dir,) = (export_dir / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"model", "baselines", "collapsed", "beats_baselines", "verdict"} <= metrics.keys()
    for name in ("best.pt", "last.pt", "history.csv", "config.json", "predictions.parquet"):
        assert (run_dir / name).exists(), name

    report = data / REPORT_PAGE  # where `corpus browse --data-dir DIR/data` serves it
    assert report.read_text().count("data:image/png;base64,") >= 4

    assert Path(summary["report"]) == report.resolve()
    assert Path(summary["export_dir"]) == export_dir.resolve() and Path(summary["run_dir"]) == run_dir.resolve()
    assert summary["metrics"] == metrics
    assert summary["ablation"] == json.loads((Path(summary["ablation_dir"]) / "ablation.json").read_text())
    assert summary["counts"]["videos"] == len(videos) and set(summary["timings_s"]) >= {"crawl + download", "train"}
    # The JSON carries all the closing tables show: they render from it.
    paths = {f.name for f in dataclasses.fields(DemoResult) if f.type == "Path"}
    demo = DemoResult(**{k: Path(v) if k in paths else v for k, v in summary.items()})
    console = Console(width=200, record=True)
    console.print(demo_results_table(demo), ablation_table(demo.ablation))
    tables = console.export_text()
    auc = metrics["model"]["roc_auc"]
    assert re.search(r"test ROC-AUC \(model\)\s+│ " + ("n/a" if auc is None else f"{auc:.3f}"), tables), tables
    observed = tracking["queue"]["observed"]
    assert f"{tracking['observations']} observations; targets " in tables and f"observed={observed}" in tables
    assert "What drives virality in this corpus" in tables
    speed = metrics["speed"]
    assert "training speed" in tables and f"│ {speed['train_clips_per_s']:.1f} clips/s over " in tables

    other_site = ["demo", "--videos", "60", "--signals", "visual=0", "--out", str(out)]
    refused = CliRunner().invoke(cli.app, other_site)
    assert refused.exit_code == 1 and "holds a demo corpus of another replica site" in refused.stderr, refused.output
    assert "--videos 60 --seed 0 --signals visual=1" in refused.stderr


def test_a_demo_refuses_a_data_folder_it_did_not_make(tmp_path):
    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(cli.app, ["demo", "--videos", "60", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "holds a data folder no demo of this version made" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
