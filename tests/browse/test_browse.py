"""``corpus browse`` in real Chromium over the session's 40-video corpus (tests/browse/conftest.py):
the grid, sorting and filtering, playback, a video's chart and related links, escaping, path refusal;
(scripts/figures.py makes the README's screenshots from a demo run)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import func, select

from tiktok_corpus.browse.app import BrowseServer
from tiktok_corpus.browse.catalog import PAGE_SIZE, Catalog
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.models import AuthorSnapshot, RelatedEdge, Video

pytestmark = pytest.mark.slow(40)

HOSTILE = '</script><img src=x onerror="window.__xss=1">"quoted"'


@pytest.fixture(scope="module")
def served(demo_corpus):
    with open_store(demo_corpus.settings) as store:
        with store.transaction() as session:  # a caption as found in the wild, on a video with related ones
            first = (
                session.query(Video)
                .filter(Video.download_status == "downloaded", Video.id.in_(select(RelatedEdge.child_id)))
                .order_by(Video.id)
                .first()
            )
            first.desc = HOSTILE
            hostile_id = first.id
        catalog = Catalog(store, demo_corpus.export_dir)
        with BrowseServer(demo_corpus.settings, store, catalog) as server:
            yield server, hostile_id, catalog


@pytest.fixture(scope="module")
def page(served):
    with sync_playwright() as playwright:
        from tiktok_corpus.config import Settings

        browser = playwright.chromium.launch(executable_path=Settings().resolved_browser_path(), headless=True)
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


def _shown(page) -> list[str]:
    return page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.videoId)")


@pytest.mark.browser
def test_grid_renders_sorts_and_filters(served, page):
    server, _, catalog = served
    assert server.base_url.startswith("http://127.0.0.1:")
    page.goto(server.base_url + "/?sort=play_count&order=desc")
    by_plays = _shown(page)
    rows = catalog.rows().set_index("video_id")
    assert 0 < len(by_plays) <= PAGE_SIZE
    plays = [rows.loc[v, "play_count"] for v in by_plays]
    assert plays == sorted(plays, reverse=True)
    page.wait_for_function("document.querySelector('.card img').complete")
    assert page.eval_on_selector(".card img", "i => i.naturalWidth") > 0  # a real poster frame
    assert page.locator(".card .labels", has_text="error").count() > 0  # the run's score and error

    page.select_option("select[name=sort]", "play_count")
    page.select_option("select[name=order]", "asc")
    page.click("button[type=submit]")
    ascending = [rows.loc[v, "play_count"] for v in _shown(page)]
    assert ascending == sorted(ascending) and ascending != plays

    author = rows.loc[by_plays[0], "author"]
    page.goto(f"{server.base_url}/?author={author}")
    assert set(_shown(page)) == set(rows.index[rows["author"] == author])
    page.goto(f"{server.base_url}/?split=test&sort=score")
    assert set(_shown(page)) <= set(rows.index[rows["split"] == "test"]) and _shown(page)


@pytest.mark.browser
def test_video_page_plays_charts_links_and_escapes(served, page, demo_corpus):
    server, hostile_id, _ = served
    page.goto(f"{server.base_url}/video/{hostile_id}")
    page.wait_for_function("document.getElementById('player').readyState >= 2", timeout=15_000)
    with open_store(demo_corpus.settings) as store, store.transaction() as session:
        video = session.get(Video, hostile_id)
        posted, seen = datetime.fromtimestamp(video.create_time, UTC), (video.first_seen_at, video.last_seen_at)
        author_seen = session.scalar(
            select(func.count()).select_from(AuthorSnapshot).where(AuthorSnapshot.author_id == video.author_id)
        )
    facts = dict(row.split("\t", 1) for row in page.locator("table").first.inner_text().splitlines())
    assert facts["posted"] == f"{posted:%Y-%m-%d %H:%M} UTC"
    assert (facts["first seen"], facts["last seen"]) == tuple(f"{when:%Y-%m-%d %H:%M} UTC" for when in seen)
    assert page.locator("#snapshot-chart polyline").count() >= 1
    # The author's counts over time, one point per snapshot the crawl kept of them.
    assert author_seen >= 1 and page.locator("#author-chart polyline").count() == 3  # followers, likes, videos
    assert page.locator("#author-chart text", has_text=f"{author_seen} snapshots").count() == 1
    assert page.locator("a.related").count() >= 1
    assert page.inner_text(".desc") == HOSTILE  # shown as text, never run
    assert page.evaluate("window.__xss") is None
    page.goto(server.base_url + "/")
    assert page.evaluate("window.__xss") is None


def test_files_are_served_with_ranges_and_only_from_the_data_dir(served, demo_corpus):
    server, hostile_id, catalog = served
    media = catalog.video(hostile_id)["media_path"]
    with httpx.Client(base_url=server.base_url) as client:
        ranged = client.get(f"/files/{media}", headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and len(ranged.content) == 100
        assert client.get("/files/corpus.db-nope").status_code == 404
    outside = demo_corpus.settings.data_dir.parent / "secret.txt"
    outside.write_text("secret")
    for raw in (
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files//etc/passwd",
        "/files/videos/..%2f..%2fsecret.txt",
    ):
        status = _raw_get(server.base_url, raw)
        assert status in (400, 404), raw


def _raw_get(base_url: str, target: str) -> int:
    """The status of a GET sent as written (clients normalise ``..`` away before sending)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return int(sock.recv(64).split(b" ")[1])


def test_a_port_in_use_is_a_clear_error(served, demo_corpus):
    server, _, catalog = served
    port = int(server.base_url.rsplit(":", 1)[1])
    with open_store(demo_corpus.settings) as store:
        second = BrowseServer(demo_corpus.settings, store, catalog, port=port)
        with pytest.raises(ConfigError, match=f"browse-server cannot listen on 127.0.0.1:{port}: .*in use"):
            second.start()
    assert httpx.get(server.base_url, timeout=10).status_code == 200  # the first one serves on


def test_a_run_alone_brings_its_export_and_its_scores(demo_corpus, tmp_path):
    with open_store(demo_corpus.settings) as store:
        catalog = Catalog(store, run_dir=demo_corpus.run_dir)
        assert catalog.export_dir.resolve() == demo_corpus.export_dir.resolve()
        assert catalog.labels["score"].notna().sum() > 0 and catalog.labels["split"].notna().all()
        with pytest.raises(ConfigError, match="is not a finished training run"):
            Catalog(store, run_dir=tmp_path)
