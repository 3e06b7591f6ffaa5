"""The report's model section built from the session corpus and its run, and the webdataset export
opened by ``datasets`` and ``webdataset`` as they are."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from playwright.sync_api import sync_playwright

from tiktok_corpus.config import Settings
from tiktok_corpus.report import build_report

MODEL_FIGURES = ("model_curves", "model_confusion", "model_roc")


@pytest.mark.browser
def test_report_holds_the_model_section(demo_corpus, tmp_path):
    out = build_report(demo_corpus.settings, export_dir=demo_corpus.export_dir, out=tmp_path / "report.html")
    page_html = out.read_text()
    metrics = json.loads((demo_corpus.run_dir / "metrics.json").read_text())
    assert 'id="model"' in page_html and 'class="dataframe model-metrics"' in page_html
    assert all(name in page_html for name in ("majority", "metadata"))
    assert metrics["verdict"].split(":")[0] in page_html
    assert f"training: {metrics['speed']['train_clips_per_s']:.1f} clips/s over" in page_html
    assert {f"{stem}.png" for stem in MODEL_FIGURES} <= {p.name for p in (tmp_path / "report_figures").iterdir()}
    assert page_html.count("data:image/jpeg;base64,") >= 2  # best/worst as poster frames
    assert '<figure id="best-worst">' in page_html
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=Settings().resolved_browser_path(), headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(out.as_uri())
        figures = page.locator("#model ~ figure").count()
        assert figures >= len(MODEL_FIGURES) + 1  # three drawn figures and the poster gallery
        poster = page.locator("#best-worst img").first
        width, height = poster.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        assert width > 0 and height > 0
        browser.close()


def test_datasets_and_webdataset_open_the_export(demo_corpus):
    import datasets
    import webdataset as wds

    root = demo_corpus.export_dir
    manifest = json.loads((root / "manifest.json").read_text())
    table = pd.read_parquet(root / "videos.parquet").set_index("video_id")
    loaded = datasets.load_dataset("parquet", data_files=str(root / "videos.parquet"), split="train")
    assert loaded["video_id"] == list(table.index) and loaded["is_viral"] == list(table["is_viral"])
    urls = [str(root / shard["file"]) for shard in manifest["webdataset"]["shards"]]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode())
    assert sorted(s["__key__"] for s in samples) == sorted(table.index)
    for sample in samples:
        row = table.loc[sample["__key__"]]
        assert sample["json"]["play_count"] == row["play_count"] and sample["json"]["split"] == row["split"]
        assert sample["mp4"] == (root / row["file"]).read_bytes()
    assert sum(s["videos"] for s in manifest["webdataset"]["shards"]) == len(table)
    assert 'wds.WebDataset("shards/' in (root / "README.md").read_text()


def test_training_from_the_shards_matches_training_from_parquet(demo_corpus, tmp_path):
    """Only the manifest and the shards copied: the trainer reads the rows and files from the shards and
    gets the run's metrics (same seed and settings)."""
    from tiktok_corpus.train import TrainConfig, train

    from .conftest import TINY_TRAINING

    shards_only = tmp_path / "shards-only"
    shards_only.mkdir()
    shutil.copy(demo_corpus.export_dir / "manifest.json", shards_only)
    shutil.copytree(demo_corpus.export_dir / "shards", shards_only / "shards")
    run = train(TrainConfig(shards_only, out=tmp_path / "run", **TINY_TRAINING))
    ours, theirs = (json.loads((d / "metrics.json").read_text()) for d in (run, demo_corpus.run_dir))
    assert ours["model"] == theirs["model"] and ours["baselines"] == theirs["baselines"]
