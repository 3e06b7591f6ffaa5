"""The newcomer's first command, end to end: a small `corpus demo` leaves every artefact behind."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import select
from typer.testing import CliRunner

from tiktok_corpus import cli
from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.models import MediaFile, RelatedEdge, Video


def test_small_demo_produces_corpus_export_metrics_and_report(tmp_path):
    out = tmp_path / "demo"

    result = CliRunner().invoke(cli.app, ["demo", "--videos", "60", "--epochs", "1", "--out", str(out)])

    assert result.exit_code == 0, result.output
    data = out / "data"
    store = open_store(Settings(data_dir=data))
    try:
        with store.sessions() as session:
            videos = session.scalars(select(Video)).all()
            files = session.scalars(select(MediaFile)).all()
            edges = session.scalars(select(RelatedEdge)).all()
    finally:
        store.dispose()
    assert sum(v.source == "foryou" for v in videos) == 25
    assert edges and all(e.rank >= 0 for e in edges)
    downloadable = [v for v in videos if v.item_kind == "video" and v.download_status != "skipped"]
    assert downloadable and all(v.download_status == "downloaded" for v in downloadable)
    assert len(files) == len(downloadable)
    assert all((data / f.path).stat().st_size == f.size_bytes for f in files)
    assert {v.probe_status for v in downloadable} <= {"valid", "too_short", "corrupt", "no_video"}

    export_dir = data / "exports" / "demo-v1"
    manifest = json.loads((export_dir / "manifest.json").read_text())
    rows = pd.read_parquet(export_dir / "videos.parquet")
    assert manifest["label"] == "binary" and manifest["row_count"] == len(rows) > 0
    assert set(rows["split"]) <= {"train", "val", "test"}
    assert (export_dir / "README.md").read_text().startswith("# demo v1")
    assert all((export_dir / f).exists() for f in rows["file"])

    (run_dir,) = (export_dir / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"model", "baselines", "collapsed", "beats_baselines", "verdict"} <= metrics.keys()
    for name in ("best.pt", "last.pt", "history.csv", "config.json", "predictions.parquet"):
        assert (run_dir / name).exists(), name

    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 4
    assert f"report:  {out / 'report.html'}" in result.stdout
    assert "test ROC-AUC (model)" in result.stdout
