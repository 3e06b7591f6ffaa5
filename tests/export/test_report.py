"""The HTML report: real figures, opened in real headless Chromium."""

from __future__ import annotations

import html
import json
import re
import warnings
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select, update
from typer.testing import CliRunner

from tiktok_corpus.cli import app
from tiktok_corpus.config import Settings
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.export import ExportOptions, run_export
from tiktok_corpus.report import build_report, engagement_table
from tiktok_corpus.report.figures import score_bins, shortened
from tiktok_corpus.report.growth import COVERAGE, FIRST_SIGHTED, growth_by_age, plays_column
from tiktok_corpus.store.db import open_store, upgrade
from tiktok_corpus.store.models import Hashtag, StatsSnapshot, VideoHashtag
from tiktok_corpus.store.reports import crawl_history, play_snapshots, top_hashtags

from .conftest import T0, _media, _video, populate_corpus

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
# The corpus fixture has two snapshots per video (a day apart): re-observed, so all growth figures.
GROWTH_FIGURES = {"growth_by_age", "snapshot_coverage", "first_sighting_age"}


@pytest.mark.browser
def test_report_opens_in_chromium_with_every_image_loaded(settings, store, corpus, tmp_path):
    export_dir = run_export(settings, ExportOptions(label="binary"))
    out = tmp_path / "site" / "report.html"

    assert build_report(settings, export_dir=export_dir, out=out) == out

    assert {p.stem for p in (out.parent / "report_figures").glob("*.png")} == FIGURES | GROWTH_FIGURES
    page_html = out.read_text()
    assert "corpus v1" in page_html
    assert page_html.count("data:image/png;base64,") == len(FIGURES | GROWTH_FIGURES)
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
    assert len(images) == len(FIGURES | GROWTH_FIGURES)
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

    assert out.read_text().count("data:image/png;base64,") == len(FIGURES | GROWTH_FIGURES)
    scripted = runner.invoke(app, ["--data-dir", str(settings.data_dir), "report", "--json"])
    assert scripted.exit_code == 0, scripted.output
    assert json.loads(scripted.stdout) == {"page": str(out), "figures": str(out.parent / "report_figures")}

    empty = Settings(data_dir=tmp_path / "empty")
    with pytest.raises(ConfigError, match="no corpus database at"):
        build_report(empty)  # a mistyped data dir is not an empty corpus: nothing is created there
    assert not empty.data_dir.exists()
    with open_store(empty):  # an empty corpus: a database without videos
        pass
    empty_page = build_report(empty).read_text()
    assert empty_page.count("data:image/png;base64,") == len(FIGURES)  # no growth figure, a note instead
    assert "No stats snapshot of a video with a known posting time yet" in empty_page

    missing = runner.invoke(app, ["--data-dir", str(settings.data_dir), "report", "--export", str(tmp_path)])
    assert missing.exit_code == 1 and "manifest.json" in missing.stderr


def test_a_build_writes_through_a_scratch_file_of_its_own(settings, store, corpus, tmp_path):
    """Two builds at once shared one scratch name (``.report.html.part``): the second's rename took the
    file the first was still writing, whose last bytes then went into the live page."""
    out = tmp_path / "site" / "report.html"
    out.parent.mkdir()
    others = out.with_name(f".{out.name}.part")
    others.write_text("another build's page, half written")
    assert build_report(settings, out=out) == out
    assert others.read_text() == "another build's page, half written"  # untouched, still that build's
    assert out.read_text().rstrip().endswith("</html>")
    assert not [path.name for path in out.parent.rglob("*.part") if path != others]


def test_figure_links_reach_their_files_whatever_the_pages_name(settings, store, corpus, tmp_path):
    """``--out 'a#b?c%20.html'``: '#', '?' and '%' in the figures' folder broke every figure's link."""
    page = build_report(settings, out=tmp_path / "a#b?c%20.html")
    links = re.findall(r'<a href="([^"]+\.png)">', page.read_text())
    assert links and all((page.parent / unquote(html.unescape(link))).is_file() for link in links)
    assert all("#" not in link and "?" not in link for link in links)


def test_a_page_is_never_written_over_a_file_that_is_no_page(settings, store, corpus, tmp_path):
    """``--out data/corpus.db`` wrote the page over the corpus's database, exit 0."""
    database = settings.data_dir / "corpus.db"
    before = database.read_bytes()
    with pytest.raises(ConfigError, match="holds no HTML page"):
        build_report(settings, out=database)
    assert database.read_bytes() == before
    page = tmp_path / "again.html"
    assert build_report(settings, out=page) == page and build_report(settings, out=page) == page  # a page: replaced


@pytest.mark.parametrize("written", ["pages/", "pages/."])
def test_an_out_written_as_a_folder_is_refused_not_made_a_file(settings, store, corpus, tmp_path, written):
    """``--out pages/`` wrote the page as a file named ``pages``: a path drops the trailing slash."""
    folder = tmp_path / "pages"
    result = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "report", "--out", f"{tmp_path}/{written}"])
    said = "".join(result.stderr.replace("│", " ").split())  # rich's box wraps the line where it likes
    assert result.exit_code == 2 and "namesafolder" in said and "report.html" in said, result.stderr
    assert not folder.exists()


def test_a_plain_report_does_not_silently_replace_one_with_a_model_section(settings, store, corpus, tmp_path):
    export_dir = Path(run_export(settings, ExportOptions()))
    ablation = export_dir / "ablations" / "20240501T000000Z"
    ablation.mkdir(parents=True)
    rows = [{"name": "all", "modalities": ["video"], "metric": 0.6}]
    (ablation / "ablation.json").write_text(json.dumps({"main_metric": "roc_auc", "rows": rows}))
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "report"]
    assert runner.invoke(app, [*base, "--export", str(export_dir)]).exit_code == 0
    page = settings.data_dir / "report" / "report.html"
    with_model = page.read_bytes()
    assert b'<h2 id="model">' in with_model
    # A line without an interval or a verdict reads "-", as the model table's do, not Python's None
    ablation_table = with_model.split(b'class="dataframe ablation"', 1)[1].split(b"</table>", 1)[0]
    assert b"None" not in ablation_table and b"False" not in ablation_table and b"<td>-</td>" in ablation_table

    plain = runner.invoke(app, base)

    assert plain.exit_code == 1 and len(plain.stderr.strip().splitlines()) == 1, plain.output
    assert f"corpus report --export {export_dir.resolve()}" in " ".join(plain.stderr.split())
    assert page.read_bytes() == with_model
    elsewhere = runner.invoke(app, [*base, "--out", str(tmp_path / "plain.html")])
    assert elsewhere.exit_code == 0 and b'id="model"' not in (tmp_path / "plain.html").read_bytes()
    replaced = runner.invoke(app, [*base, "--replace"])
    assert replaced.exit_code == 0 and b'id="model"' not in page.read_bytes()
    assert runner.invoke(app, base).exit_code == 0  # nothing left to lose
    assert "--replace" in runner.invoke(app, ["report", "--help"]).stdout


def test_the_score_histogram_holds_every_score_and_long_labels_are_shortened():
    """Val and test scores past [0, 1] fell outside fixed edges, left out without a word; an 80-character
    hashtag left the bars 35 of 442 pixels."""
    scores = pd.Series([-0.05, 0.3, 1.07])
    bins = score_bins(scores)
    assert bins[0] <= -0.05 and bins[-1] >= 1.07 and np.histogram(scores, bins)[0].sum() == 3
    assert list(score_bins(pd.Series([0.0, 1.0]))) == list(np.linspace(0, 1, 41))  # the paper's scores: as before
    assert shortened("x" * 80) == "x" * 31 + "…" and shortened("fyp") == "fyp"


def test_a_hashtag_with_dollar_signs_is_drawn_as_written(settings, store, corpus, tmp_path):
    """Matplotlib reads ``$...$`` in a label as mathtext; a hashtag it cannot parse stopped the report."""
    with store.transaction() as session:
        session.execute(update(Hashtag).where(Hashtag.name == "fun").values(name=r"$\foo{$"))

    build_report(settings, out=tmp_path / "report.html")

    assert (tmp_path / "report_figures" / "hashtags.png").stat().st_size > 0


def test_the_crawl_figures_count_videos_not_photos_ads_or_private_posts(any_db_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", db_url=any_db_url)
    store = open_store(settings, check_schema=False)
    upgrade(store.engine)
    try:
        populate_corpus(store, settings.data_dir)  # 16 videos (and a photo post), tagged fun 9, dance 6, cat 3
        with store.transaction() as session:
            fun = session.scalar(select(Hashtag.id).where(Hashtag.name == "fun"))
            for video_id, kind in (("3001", "photo"), ("3002", "ad"), ("3003", "private")):
                session.add(_video(video_id, "a0", item_kind=kind, download_status="skipped"))
                session.flush()
                session.add(VideoHashtag(video_id=video_id, hashtag_id=fun))
        crawl, hashtags = crawl_history(store), top_hashtags(store, 10)
    finally:
        store.dispose()

    assert len(crawl) == 16 and not {"2002", "3001", "3002", "3003"} & set(crawl["id"])
    assert dict(zip(hashtags["name"], hashtags["videos"])) == {"fun": 9, "dance": 6, "cat": 3}


def test_engagement_table_has_the_papers_statistics():
    rows = pd.DataFrame(
        {m: [1, 2, 3, 4, 100] for m in ("play_count", "like_count", "comment_count", "share_count", "collect_count")}
    )
    table = engagement_table(rows)

    assert list(table.columns) == ["mean", "std", "25%", "50%", "75%", "max"]
    assert table.loc["play_count"].tolist() == pytest.approx(
        [22.0, pd.Series([1, 2, 3, 4, 100]).std(), 2.0, 3.0, 4.0, 100.0]
    )


# --- growth by age since posting (issue #15) -----------------------------------------------------

HOUR, DAY = 3_600, 86_400
CREATED = int((T0 - timedelta(days=60)).timestamp())
# video id -> [(age in seconds, plays)]: snapshots at known ages since posting.
SNAPSHOTS = {
    "4001": [(30 * 60, 10), (3 * HOUR, 100), (2 * DAY, 1000), (10 * DAY, 5000)],
    "4002": [(30 * 60, 20), (45 * 60, 25), (3 * HOUR, 300), (2 * DAY, 3000)],  # two in 0-1h: the latest counts
    "4003": [(2 * DAY, 50), (10 * DAY, 70)],  # first sighted at 2 days
    "4004": [(40 * DAY, 9)],  # seen once, old
}
COVERAGE_BY_BIN = {"0-1h": 2, "1-6h": 2, "6h-1d": 0, "1-3d": 3, "3-7d": 0, "7-14d": 2, "14-30d": 0, ">30d": 1}
FIRST_SIGHTED_BY_BIN = {"0-1h": 2, "1-6h": 0, "6h-1d": 0, "1-3d": 1, "3-7d": 0, "7-14d": 0, "14-30d": 0, ">30d": 1}


def _add_snapshots(store, data_dir, snapshots: dict[str, list[tuple[int, int]]]) -> None:
    """Videos posted at CREATED with stats snapshots at the given ages; one more without a posting time."""
    with store.transaction() as session:
        for video_id, sightings in snapshots.items():
            session.add(_video(video_id, None, create_time=CREATED))
            session.flush()
            session.add(_media(data_dir, video_id))
            for age_s, plays in sightings:
                captured_at = pd.Timestamp(CREATED + age_s, unit="s", tz="UTC").to_pydatetime()
                session.add(StatsSnapshot(video_id=video_id, captured_at=captured_at, play_count=plays))
        session.add(_video("4999", None, create_time=None))  # no posting time: no age, left out
        session.flush()
        session.add(StatsSnapshot(video_id="4999", captured_at=T0, play_count=1))


def _growth_row(page_html: str, age_bin: str) -> list[str]:
    """The cells of one age bin's row in the page's growth table."""
    table = page_html[page_html.index('class="dataframe growth"') :]
    row = re.search(rf"<th>{re.escape(age_bin.replace('>', '&gt;'))}</th>(.*?)</tr>", table, re.S)
    assert row, age_bin
    return re.findall(r"<td>(.*?)</td>", row.group(1))


def test_growth_section_counts_snapshots_per_age_bin(settings, store, tmp_path):
    _add_snapshots(store, settings.data_dir, SNAPSHOTS)

    out = build_report(settings, out=tmp_path / "report.html")

    page = out.read_text()
    assert "4 videos (every video with a known posting time), 11 stats snapshots, 3 videos re-observed" in page
    assert "No re-observations yet" not in page
    # Coverage, first sighted, then 25% / median / 75% of plays: a video counts once per bin, with its
    # latest snapshot there (4002's 25 plays at 45 min, not its 20 at 30 min).
    assert _growth_row(page, "0-1h") == ["2", "2", "13.8", "17.5", "21.2"]
    assert _growth_row(page, "1-3d") == ["3", "1", "525.0", "1,000.0", "2,000.0"]
    assert _growth_row(page, "6h-1d") == ["0", "0", "-", "-", "-"]
    assert _growth_row(page, ">30d") == ["1", "1", "9.0", "9.0", "9.0"]
    figures = {p.stem for p in (tmp_path / "report_figures").glob("*.png")}
    assert GROWTH_FIGURES <= figures


def test_plays_by_age_from_sqlite_and_postgres_split_by_class(any_db_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", db_url=any_db_url)
    store = open_store(settings, check_schema=False)
    upgrade(store.engine)
    try:
        _add_snapshots(store, settings.data_dir, SNAPSHOTS)
        snapshots = play_snapshots(store)
    finally:
        store.dispose()

    assert snapshots.groupby("video_id").size().to_dict() == {k: len(v) for k, v in SNAPSHOTS.items()}
    growth = growth_by_age(snapshots)
    assert growth.table[COVERAGE].to_dict() == COVERAGE_BY_BIN
    assert growth.table[FIRST_SIGHTED].to_dict() == FIRST_SIGHTED_BY_BIN
    assert growth.table.loc["1-3d", plays_column("median", "all videos")] == 1000
    assert (growth.videos, growth.re_observed, growth.snapshots) == (4, 3, 11)

    by_class = growth_by_age(snapshots, pd.Series([1, 0, 1], index=["4001", "4002", "4003"], name="is_viral"))
    assert by_class.groups == ["is_viral = 0", "is_viral = 1"]
    assert by_class.table.loc["1-3d", COVERAGE] == 3 and by_class.table.loc[">30d", COVERAGE] == 0  # 4004: no label
    assert by_class.table.loc["1-3d", plays_column("median", "is_viral = 1")] == pytest.approx(525)  # 1000, 50
    assert by_class.table.loc["1-3d", plays_column("median", "is_viral = 0")] == 3000
    assert pd.isna(by_class.table.loc["7-14d", plays_column("median", "is_viral = 0")])


def test_one_snapshot_per_video_shows_first_sightings_and_says_to_track(settings, store, tmp_path):
    _add_snapshots(store, settings.data_dir, {video_id: s[:1] for video_id, s in SNAPSHOTS.items()})

    out = build_report(settings, out=tmp_path / "report.html")

    page = out.read_text()
    assert "0 videos re-observed" in page and "No re-observations yet" in page and "corpus track" in page
    assert _growth_row(page, "0-1h")[:2] == ["2", "2"] and _growth_row(page, "1-3d")[:2] == ["1", "1"]
    assert {p.stem for p in (tmp_path / "report_figures").glob("*.png")} & GROWTH_FIGURES == {"first_sighting_age"}


def test_sightings_within_one_age_bin_or_without_plays_are_no_growth_curve(settings, store, tmp_path):
    """A crawl sights a video in many related lists within minutes, some at one moment, and a sighting may
    have no counts: none of it is a re-observation, and the report says to track instead of drawing curves
    that only compare different videos."""
    sightings = {
        "4101": [(30 * 60, 10), (35 * 60, 11), (35 * 60, 11), (50 * 60, 12)],  # three moments, all in 0-1h
        "4102": [(2 * DAY, 500), (10 * DAY, None)],  # its 10d sighting has no plays
    }
    _add_snapshots(store, settings.data_dir, sightings)

    page = build_report(settings, out=tmp_path / "report.html").read_text()

    assert "2 videos (every video with a known posting time), 4 stats snapshots, 0 videos re-observed" in page
    assert "No re-observations yet" in page
    assert _growth_row(page, "7-14d")[:2] == ["0", "0"]
    assert {p.stem for p in (tmp_path / "report_figures").glob("*.png")} & GROWTH_FIGURES == {"first_sighting_age"}


def test_growth_by_class_with_an_export(settings, store, corpus, tmp_path):
    export_dir = run_export(settings, ExportOptions(label="binary"))

    page = build_report(settings, export_dir=export_dir, out=tmp_path / "report.html").read_text()

    assert "12 videos (the export's videos, plays split by is_viral), 24 stats snapshots" in page
    assert "median plays (is_viral = 0)" in page and "median plays (is_viral = 1)" in page


def test_hashtags_in_other_scripts_are_drawn_without_a_warning_per_glyph(tmp_path):
    """CJK and emoji hashtags are common: where no installed font has a glyph, matplotlib printed one
    UserWarning per character of every label."""
    from tiktok_corpus.report.build import _figures_html
    from tiktok_corpus.report.figures import FigureSpec

    spec = FigureSpec(
        "tags", "Top hashtags", lambda figure: figure.subplots().barh(["美食", "日常🍜", "먹방"], [3, 2, 1])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = _figures_html([spec], tmp_path, "figures")
    assert (tmp_path / "tags.png").is_file() and "data:image/png;base64," in page
