"""A ``--run`` given with an ``--export`` must have been trained on it: two corpora crawled from the same
site share video ids and both name their first export ``corpus-v1``, so another corpus's run would put
its scores on these rows without a word. The export's identity is its content (the manifest's
``data_sha256``): a copy of the export elsewhere is the same export."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from tiktok_corpus.cli import app
from tiktok_corpus.config import Settings
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.export import ExportOptions, run_export
from tiktok_corpus.export.runs import RunExportMismatch, another_corpus, export_for_run
from tiktok_corpus.report.model import read_run
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.models import StatsSnapshot
from tiktok_corpus.train import TrainConfig, train

from .conftest import T0, populate_corpus

IDS = [str(7_300_000_000_000_000_000 + i) for i in range(6)]
SPLITS = ["train", "train", "val", "val", "test", "test"]


def corpus_with_run(data_dir: Path, labels: list[int], *, recorded: str | None = None) -> tuple[Path, Path]:
    """``data_dir/exports/corpus-v1`` (a table of :data:`IDS` with ``labels``, its manifest) and a
    finished run under it, recording the export as ``recorded`` (default: its absolute path)."""
    export_dir = data_dir / "exports" / "corpus-v1"
    export_dir.mkdir(parents=True)
    table = pd.DataFrame({"video_id": IDS, "is_viral": labels, "split": SPLITS})
    table.to_parquet(export_dir / "videos.parquet", index=False)
    digest = hashlib.sha256((export_dir / "videos.parquet").read_bytes()).hexdigest()
    manifest = {"name": "corpus", "version": 1, "label": "binary", "data_sha256": digest}
    (export_dir / "manifest.json").write_text(json.dumps(manifest))
    run_dir = export_dir / "runs" / "20250101-000000-000000"
    run_dir.mkdir(parents=True)
    export = recorded if recorded is not None else str(export_dir.resolve())
    run = {"export": export, "export_name": "corpus", "export_version": 1}
    (run_dir / "metrics.json").write_text(json.dumps({"task": "binary", "main_metric": "roc_auc", "run": run}))
    (run_dir / "config.json").write_text(json.dumps({"export_dir": export, "model": "gbdt"}))
    rows = table[table["split"] != "train"]
    pd.DataFrame(
        {"video_id": rows["video_id"], "split": rows["split"], "target": rows["is_viral"].astype(float), "score": 0.5}
    ).to_parquet(run_dir / "predictions.parquet", index=False)
    return export_dir, run_dir


def two_corpora(parent: Path) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    """d1 and d2: the same ids, other labels, each export ``corpus-v1`` with a run."""
    return corpus_with_run(parent / "d1", [0, 1, 0, 1, 0, 1]), corpus_with_run(parent / "d2", [1, 0, 1, 0, 1, 0])


def _crawled_and_exported(data_dir: Path, *, plays_of_first: int | None = None) -> tuple[Settings, Path]:
    """The synthetic corpus in its own database under ``data_dir``, exported as ``corpus-v1``; another
    corpus of the same site when the first video's latest plays are ``plays_of_first``."""
    settings = Settings(data_dir=data_dir)
    store = open_store(settings)
    try:
        populate_corpus(store, settings.data_dir)
        if plays_of_first is not None:
            with store.transaction() as session:
                session.execute(
                    update(StatsSnapshot)
                    .where(StatsSnapshot.video_id == "1000", StatsSnapshot.captured_at == T0)
                    .values(play_count=plays_of_first)
                )
    finally:
        store.dispose()
    return settings, run_export(settings, ExportOptions(stratify=True))


def test_corpus_report_refuses_another_corpuss_run_in_one_line(tmp_path):
    """Two corpora of one site, each with its ``corpus-v1`` and the same video ids; d2's gbdt run given
    with d1's export wrote a page of d2's scores on d1's rows, exit 0."""
    settings, d1 = _crawled_and_exported(tmp_path / "d1" / "data")
    settings2, d2 = _crawled_and_exported(tmp_path / "d2" / "data", plays_of_first=1_234)
    assert (d1.name, d2.name) == ("corpus-v1", "corpus-v1")
    d2_run = train(TrainConfig(d2, model="gbdt", modalities="author,time", progress=False, device="cpu"))
    mix = tmp_path / "mix.html"
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "report", "--export", str(d1)]

    result = runner.invoke(app, [*base, "--run", str(d2_run), "--out", str(mix)])

    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    line = " ".join(result.stderr.split())
    assert f"--run {d2_run} was trained on {d2.resolve()} (corpus v1, data " in line, line
    assert f"not on --export {d1}" in line and "Traceback" not in result.output
    assert not mix.exists()
    own = tmp_path / "own.html"
    with_own = ["--data-dir", str(settings2.data_dir), "report", "--export", str(d2), "--run", str(d2_run)]
    assert runner.invoke(app, [*with_own, "--out", str(own)]).exit_code == 0 and 'id="model"' in own.read_text()


def test_another_corpuss_export_is_shown_with_a_warning_and_a_moved_own_one_without(tmp_path):
    """d2's export given to d1's report (browse likewise) put d2's labels on d1's videos of the same ids,
    without a word; d1's own export, even moved, is recognised by its table in d1's database."""
    settings, d1 = _crawled_and_exported(tmp_path / "d1" / "data")
    _, d2 = _crawled_and_exported(tmp_path / "d2" / "data", plays_of_first=1_234)
    base = ["--data-dir", str(settings.data_dir), "report", "--out", str(tmp_path / "page.html"), "--export"]

    foreign = CliRunner().invoke(app, [*base, str(d2)])

    assert foreign.exit_code == 0, foreign.output
    said = " ".join(foreign.stderr.split())
    assert f"warning: {d2} (corpus v1, data " in said and "was not exported from this corpus" in said
    assert said.split("but from")[1].startswith(f" sqlite:///{tmp_path / 'd2' / 'data'}")  # the one it came from
    moved = shutil.move(d1, tmp_path / "moved")
    own = CliRunner().invoke(app, [*base, str(moved)])
    assert own.exit_code == 0 and "warning" not in own.stderr, own.output
    with open_store(settings) as store:
        assert another_corpus(store, Path(moved)) is None and another_corpus(store, None) is None
        assert "was not exported from this corpus" in (another_corpus(store, d2) or "")


def test_a_run_with_its_own_export_or_a_copy_of_it_is_accepted(tmp_path, monkeypatch):
    (d1, d1_run), (d2, d2_run) = two_corpora(tmp_path)
    copy = tmp_path / "elsewhere" / "corpus-v1"
    shutil.copytree(d1, copy)  # its run comes along, still naming d1's export

    export_for_run(d1_run, d1)
    monkeypatch.chdir(tmp_path)
    export_for_run(d1_run, Path("d1/exports/../exports/corpus-v1"))  # the same folder, spelled otherwise
    export_for_run(d1_run, copy)  # the same table elsewhere
    export_for_run(copy / "runs" / d1_run.name, d1)
    shutil.rmtree(d1)  # the export the copied run names is gone: the copy it sits in is its export
    export_for_run(copy / "runs" / d1_run.name, copy)
    with pytest.raises(RunExportMismatch):
        export_for_run(copy / "runs" / d1_run.name, d2)
    with pytest.raises(RunExportMismatch, match="was trained on") as refused:
        export_for_run(d2_run, copy)
    assert refused.value.kind == "run_export_mismatch" and refused.value.expected


def test_the_same_table_labelled_otherwise_is_another_export(tmp_path):
    """Every table holds both label columns: `--labels binary` and `--labels continuous` of one corpus
    write the same bytes, and a binary run was accepted on the continuous export (its virality_score
    shown as the label beside the run's scores)."""
    (d1, d1_run), _ = two_corpora(tmp_path)
    continuous = tmp_path / "d1" / "exports" / "corpus-v2"
    shutil.copytree(d1, continuous, ignore=shutil.ignore_patterns("runs"))
    manifest = json.loads((continuous / "manifest.json").read_text())
    (continuous / "manifest.json").write_text(json.dumps({**manifest, "version": 2, "label": "continuous"}))
    with pytest.raises(RunExportMismatch, match="labels binary.*labels continuous"):
        export_for_run(d1_run, continuous)


def test_a_relative_export_path_is_read_from_the_runs_own_export_first(tmp_path, monkeypatch):
    """A run records its export as training was given it: ``exports/corpus-v1`` in d2 names d1's export
    when read from d1, so the export the run's folder sits in decides."""
    d1, _ = corpus_with_run(tmp_path / "d1", [0, 1, 0, 1, 0, 1])
    _, d2_run = corpus_with_run(tmp_path / "d2", [1, 0, 1, 0, 1, 0], recorded="exports/corpus-v1")
    monkeypatch.chdir(tmp_path / "d1")

    with pytest.raises(RunExportMismatch, match="was trained on"):
        export_for_run(d2_run, Path("exports/corpus-v1"))


def test_a_run_whose_export_is_nowhere_is_judged_by_its_name_and_version(tmp_path):
    (d1, _), (_, d2_run) = two_corpora(tmp_path)
    moved = tmp_path / "moved-run"
    shutil.move(d2_run, moved)
    shutil.rmtree(tmp_path / "d2")

    export_for_run(moved, d1)  # corpus v1 both: nothing more can tell them apart
    metrics = json.loads((moved / "metrics.json").read_text())
    metrics["run"]["export_version"] = 2
    (moved / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunExportMismatch, match="was trained on corpus v2, not on --export"):
        export_for_run(moved, d1)


def test_the_report_reads_the_export_it_accepted_not_the_one_the_run_recorded(tmp_path):
    """The export copied elsewhere, the run archived apart from it, the original deleted: the copy is the
    run's export, and the page is made from it (it was checked, then the recorded path read again)."""
    settings, export = _crawled_and_exported(tmp_path / "d1" / "data")
    run = train(TrainConfig(export, model="gbdt", modalities="author,time", progress=False, device="cpu"))
    copy, archived = tmp_path / "elsewhere" / "corpus-v1", tmp_path / "archive" / run.name
    shutil.copytree(export, copy, ignore=shutil.ignore_patterns("runs"))
    shutil.move(run, archived)
    shutil.rmtree(export)
    page = tmp_path / "page.html"

    result = CliRunner().invoke(
        app,
        [
            "--data-dir",
            str(settings.data_dir),
            "report",
            "--export",
            str(copy),
            "--run",
            str(archived),
            "--out",
            str(page),
        ],
    )

    assert result.exit_code == 0, result.output
    assert 'id="model"' in page.read_text()


@pytest.mark.parametrize("damage", ["cut", "gone"])
def test_a_run_whose_predictions_cannot_be_read_is_refused_in_one_line(tmp_path, damage):
    """A predictions table cut short gave pyarrow's traceback, and with --json no error document."""
    _, run_dir = corpus_with_run(tmp_path / "data", [0, 1, 0, 1, 0, 1])
    predictions = run_dir / "predictions.parquet"
    if damage == "cut":
        predictions.write_bytes(predictions.read_bytes()[:300])
    else:
        predictions.unlink()
    with pytest.raises(ConfigError, match=r"predictions\.parquet cannot be read .*; train the run again"):
        read_run(run_dir)
