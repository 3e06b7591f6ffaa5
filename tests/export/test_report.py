"""The HTML report: real figures, opened in real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import sync_playwright
from typer.testing import CliRunner

from tiktok_corpus.cli import app
from tiktok_corpus.config import Settings
from tiktok_corpus.export import ExportOptions, run_export
from tiktok_corpus.report import build_report, engagement_table

FIGURES = {
    "fig1_duration",
    "fig2_engagement",
    "fig3_virality_score",
    "fig4_is_viral",
    "fps",
    "resolution",
    "frame_count",
    "growth",
    "depth",
    "hashtags",
}


@pytest.mark.browser
def test_report_opens_in_chromium_with_every_image_loaded(settings, store, corpus, tmp_path):
    export_dir = run_export(settings, ExportOptions(label="binary"))
    out = tmp_path / "site" / "report.html"

    assert build_report(settings, export_dir=export_dir, out=out) == out

    assert {p.stem for p in (out.parent / "report_figures").glob("*.png")} == FIGURES
    page_html = out.read_text()
    assert "corpus v1" in page_html and page_html.count("data:image/png;base64,") == len(FIGURES)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=Settings().resolved_browser_path(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            # Offline: any request leaving the page (the report must be self-contained) fails the test.
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(out.as_uri())
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => ({done: i.complete, width: i.naturalWidth, alt: i.alt}))"
            )
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert len(images) == len(FIGURES)
    assert all(image["done"] and image["width"] > 100 for image in images), images
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_report_from_the_database_alone_and_an_empty_one(settings, store, corpus, tmp_path):
    runner = CliRunner()

    done = runner.invoke(app, ["--data-dir", str(settings.data_dir), "report"])
    assert done.exit_code == 0, done.output
    out = Path(done.stdout.strip().splitlines()[-1])
    assert out == settings.data_dir / "report" / "report.html"
    assert "the 12 videos an export would take now" in out.read_text()

    empty = Settings(data_dir=tmp_path / "empty")
    empty_out = build_report(empty)
    assert empty_out.read_text().count("data:image/png;base64,") == len(FIGURES)

    missing = runner.invoke(app, ["--data-dir", str(settings.data_dir), "report", "--export", str(tmp_path)])
    assert missing.exit_code == 1 and "manifest.json" in missing.stderr


def test_engagement_table_has_the_papers_statistics():
    rows = pd.DataFrame(
        {m: [1, 2, 3, 4, 100] for m in ("play_count", "like_count", "comment_count", "share_count", "collect_count")}
    )
    table = engagement_table(rows)

    assert list(table.columns) == ["mean", "std", "25%", "50%", "75%", "max"]
    assert table.loc["play_count"].tolist() == pytest.approx(
        [22.0, pd.Series([1, 2, 3, 4, 100]).std(), 2.0, 3.0, 4.0, 100.0]
    )
