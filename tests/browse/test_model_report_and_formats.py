"""The report's model section built from the session corpus and its run and served by ``corpus
browse``, and the webdataset export opened by ``datasets`` and ``webdataset`` as they are."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import sync_playwright

from tiktok_corpus.browse.app import BrowseServer
from tiktok_corpus.browse.catalog import Catalog
from tiktok_corpus.config import Settings
from tiktok_corpus.export import read_export
from tiktok_corpus.report import build_report
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.reports import REPORT_PAGE, report_figures_dir

from .conftest import copy_of

MODEL_FIGURES = ("model_curves", "model_confusion", "model_roc")


@pytest.mark.browser
def test_report_holds_the_model_section_and_browse_serves_it(demo_corpus, tmp_path):
    """Written where ``corpus browse`` serves it (the default ``corpus demo`` uses too), and shown there
    whole under the app's Content-Security-Policy: every figure, the posters, the links to the PNGs.
    Built in a copy of the session corpus: the report, its figures and its poster cache land in the data
    dir, which the other tests share."""
    corpus = copy_of(demo_corpus, tmp_path)
    settings = corpus.settings
    out = build_report(settings, export_dir=corpus.export_dir)
    assert out == settings.data_dir / REPORT_PAGE
    page_html = out.read_text()
    metrics = json.loads((corpus.run_dir / "metrics.json").read_text())
    assert 'id="model"' in page_html and 'class="dataframe model-metrics"' in page_html
    assert all(name in page_html for name in ("majority", "metadata"))
    assert "each row's at its own threshold, tuned on the validation split" in html.unescape(page_html)
    assert metrics["verdict"].split(":")[0] in page_html
    assert f"training: {metrics['speed']['train_clips_per_s']:.1f} clips/s over" in page_html
    _, rows = read_export(corpus.export_dir)
    test_authors = rows.loc[rows["split"] == "test", "author_id"]
    if test_authors.duplicated().any():  # a crawl's order, so its authors, varies from run to run
        clusters = test_authors.nunique()
        assert f"{metrics['n_test']} test videos in {clusters} clusters by author" in page_html
    else:
        assert metrics["n_test_clusters"] is None and "clusters by author" not in page_html
    assert {f"{stem}.png" for stem in MODEL_FIGURES} <= {p.name for p in report_figures_dir(out).iterdir()}
    assert page_html.count("data:image/jpeg;base64,") >= 2  # best/worst as poster frames
    assert '<figure id="best-worst">' in page_html
    with (
        sync_playwright() as playwright,
        open_store(settings) as store,
        BrowseServer(settings, store, Catalog(store)) as server,
    ):
        browser = playwright.chromium.launch(executable_path=Settings().resolved_browser_path(), headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        refused: list[str] = []
        page.on(
            "console",
            lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
        )
        page.goto(server.base_url + "/report")
        figures = page.locator("#model ~ figure").count()
        assert figures >= len(MODEL_FIGURES) + 1  # three drawn figures and the poster gallery
        poster = page.locator("#best-worst img").first
        width, height = poster.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        assert width > 0 and height > 0
        assert page.eval_on_selector("figcaption", "c => getComputedStyle(c).color") == "rgb(85, 85, 85)"  # its CSS
        figure_link = page.locator("figcaption a").first.get_attribute("href")
        response = page.request.get(f"{page.url.rsplit('/', 1)[0]}/{figure_link}")
        assert response.status == 200 and response.headers["content-type"] == "image/png"
        browser.close()
    assert refused == []


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


def _shards_only_copy(export_dir: Path, tmp_path: Path) -> Path:
    """The export as a user may copy it: its manifest and its shards, no table file."""
    shards_only = tmp_path / "shards-only"
    shards_only.mkdir()
    shutil.copy(export_dir / "manifest.json", shards_only)
    shutil.copytree(export_dir / "shards", shards_only / "shards")
    return shards_only


def test_training_from_the_shards_matches_training_from_parquet(demo_corpus, tmp_path):
    """Only the manifest and the shards copied: the trainer reads the rows and files from the shards and
    gets the run's metrics (same seed and settings)."""
    from tiktok_corpus.train import TrainConfig, train

    from .conftest import TINY_TRAINING

    shards_only = _shards_only_copy(demo_corpus.export_dir, tmp_path)
    run = train(TrainConfig(shards_only, out=tmp_path / "run", **TINY_TRAINING))
    ours, theirs = (json.loads((d / "metrics.json").read_text()) for d in (run, demo_corpus.run_dir))
    assert ours["model"] == theirs["model"] and ours["baselines"] == theirs["baselines"]


def test_the_feature_tables_of_a_shards_only_copy_are_made_and_then_reused(demo_corpus, tmp_path):
    """gbdt's tables from the shards alone: no table file to hash, so the shards' digests identify it (the
    cache failed with a traceback on the missing videos.parquet)."""
    from tiktok_corpus.features import FeatureOptions, extract_features

    shards_only = _shards_only_copy(demo_corpus.export_dir, tmp_path)
    options = FeatureOptions(modalities=("time", "author"), progress=False)
    first, again = extract_features(shards_only, options), extract_features(shards_only, options)
    assert [r.cache_hit for r in first.results] == [False, False]
    assert [r.cache_hit for r in again.results] == [True, True]
