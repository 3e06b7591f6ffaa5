"""``corpus browse`` in real Chromium over the session's 40-video corpus (tests/browse/conftest.py):
the grid, sorting and filtering, playback, a video's chart and related links, escaping, path refusal;
(scripts/figures.py makes the README's screenshots from a demo run)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import func, select
from starlette.testclient import TestClient

from tests.waiting import wait_for
from tiktok_corpus.browse import make_posters_in_background
from tiktok_corpus.browse.app import CONTENT_SECURITY_POLICY, BrowseServer, browse_app
from tiktok_corpus.browse.catalog import PAGE_SIZE, Catalog
from tiktok_corpus.browse.poster_jobs import PosterRequests, make_posters
from tiktok_corpus.config import Settings
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.posters import poster_path
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.models import AuthorSnapshot, MediaFile, RelatedEdge, Video
from tiktok_corpus.store.reports import REPORT_PAGE
from tiktok_corpus.tiktok.session_files import STATE_FILE, session_dir

from .conftest import DemoCorpus, copy_of

pytestmark = pytest.mark.slow(40)

HOSTILE = '</script><img src=x onerror="window.__xss=1">"quoted"'
# Whether a <video> can show its first frame, once it knows (true at once when it already can).
PLAYABLE = """video => video.readyState >= 2 || new Promise(settled => {
    video.addEventListener("loadeddata", () => settled(true), {once: true});
    video.addEventListener("error", () => settled(false), {once: true});
})"""


@pytest.fixture(scope="module")
def corpus(demo_corpus, tmp_path_factory) -> DemoCorpus:
    """A copy of the session corpus: the hostile caption written into it, and the files written beside
    its data dir, stay out of the one the other browse tests share."""
    return copy_of(demo_corpus, tmp_path_factory.mktemp("browse-served"))


@pytest.fixture(scope="module")
def served(corpus):
    with open_store(corpus.settings) as store:
        with store.transaction() as session:  # a caption as found in the wild, on a video with related ones
            first = (
                session.query(Video)
                .filter(Video.download_status == "downloaded", Video.id.in_(select(RelatedEdge.child_id)))
                .order_by(Video.id)
                .first()
            )
            first.desc = HOSTILE
            hostile_id = first.id
        catalog = Catalog(store, corpus.export_dir)
        with BrowseServer(corpus.settings, store, catalog) as server:
            yield server, hostile_id, catalog


@pytest.fixture(scope="module")
def page(served):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=Settings().resolved_browser_path(), headless=True)
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


@pytest.fixture
def refused(page):
    """What the pages' Content-Security-Policy refused during this test: Chromium logs each refusal to
    the console. Heard only while the test runs, so another test's refusals (the no-script one's) never
    count here, whatever the order."""
    messages: list[str] = []

    def listen(message) -> None:
        if "Content Security Policy" in message.text:
            messages.append(message.text)

    page.on("console", listen)
    yield messages
    page.remove_listener("console", listen)


def _shown(page) -> list[str]:
    return page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.videoId)")


@pytest.mark.browser
def test_grid_renders_sorts_and_filters(served, page, refused):
    server, _, catalog = served
    assert server.base_url.startswith("http://127.0.0.1:")
    page.goto(server.base_url + "/?sort=play_count&order=desc")
    assert page.eval_on_selector("#grid", "grid => getComputedStyle(grid).display") == "grid"  # its inline CSS
    by_plays = _shown(page)
    rows = catalog.rows().set_index("video_id")
    assert 0 < len(by_plays) <= PAGE_SIZE
    plays = [rows.loc[v, "play_count"] for v in by_plays]
    assert plays == sorted(plays, reverse=True)
    # Waits read the page from Playwright's own world: the pages' CSP refuses the eval wait_for_function needs.
    expect(page.locator(".card img").first).to_have_js_property("complete", True)
    assert page.eval_on_selector(".card img", "i => i.naturalWidth") > 0  # a real poster frame
    assert page.locator(".card .labels", has_text="error").count() > 0  # the run's score and error

    page.select_option("select[name=sort]", "play_count")
    page.select_option("select[name=order]", "asc")
    page.click("button[type=submit]")  # only starts the navigation: wait for the new grid to load
    page.wait_for_url(re.compile(r"[?&]order=asc(&|$)"))
    page.wait_for_load_state()
    by_plays_ascending = _shown(page)
    assert len(by_plays_ascending) == len(by_plays) > 0
    ascending = [rows.loc[v, "play_count"] for v in by_plays_ascending]
    assert ascending == sorted(ascending) and ascending != plays

    author = rows.loc[by_plays[0], "author"]
    page.goto(f"{server.base_url}/?author={author}")
    assert set(_shown(page)) == set(rows.index[rows["author"] == author])
    page.goto(f"{server.base_url}/?split=test&sort=score")
    assert set(_shown(page)) <= set(rows.index[rows["split"] == "test"]) and _shown(page)
    assert refused == []


@pytest.mark.browser
def test_video_page_plays_charts_links_and_escapes(served, page, refused, corpus):
    server, hostile_id, _ = served
    page.goto(f"{server.base_url}/video/{hostile_id}")
    assert page.eval_on_selector("#player", PLAYABLE), "the video did not load"
    with open_store(corpus.settings) as store, store.transaction() as session:
        video = session.get(Video, hostile_id)
        posted, seen = datetime.fromtimestamp(video.create_time, UTC), (video.first_seen_at, video.last_seen_at)
        author_seen = session.scalar(
            select(func.count()).select_from(AuthorSnapshot).where(AuthorSnapshot.author_id == video.author_id)
        )
    facts = dict(row.split("\t", 1) for row in page.locator("table").first.inner_text().splitlines())
    assert facts["posted (site clock)"] == f"{posted:%Y-%m-%d %H:%M} UTC"
    assert (facts["first seen (local clock)"], facts["last seen (local clock)"]) == tuple(
        f"{when:%Y-%m-%d %H:%M} UTC" for when in seen
    )
    assert page.locator("#snapshot-chart polyline").count() >= 1
    # The author's counts over time, one point per snapshot the crawl kept of them.
    assert author_seen >= 1 and page.locator("#author-chart polyline").count() == 3  # followers, likes, videos
    assert page.locator("#author-chart text", has_text=f"{author_seen} snapshots").count() == 1
    assert page.locator("a.related").count() >= 1
    assert page.inner_text(".desc") == HOSTILE  # shown as text, never run
    assert page.evaluate("window.__xss") is None
    page.goto(server.base_url + "/")
    assert page.evaluate("window.__xss") is None
    assert refused == []


@pytest.mark.browser
def test_a_served_page_runs_no_script(page, tmp_path):
    """The Content-Security-Policy's second line of defence behind the escaping: a script in a page
    does not run, while its inline CSS applies."""
    settings = Settings(data_dir=tmp_path / "data")
    report = settings.data_dir / REPORT_PAGE
    report.parent.mkdir(parents=True)
    report.write_text("<!doctype html><style>body { margin: 7px }</style><script>window.__ran = 1</script>")
    with open_store(settings) as store, BrowseServer(settings, store, Catalog(store)) as server:
        page.goto(server.base_url + "/report")
        assert page.evaluate("getComputedStyle(document.body).marginTop") == "7px"
        assert page.evaluate("window.__ran") is None


def test_only_the_pages_files_are_served(served, corpus):
    """A video's file (with Range, for seeking) by its id; never the crawler's cookies or the database,
    which lie in the same data directory, however the path is written."""
    server, hostile_id, _ = served
    data_dir = corpus.settings.data_dir
    assert (session_dir(corpus.settings) / STATE_FILE).is_file() and (data_dir / "corpus.db").is_file()
    with httpx.Client(base_url=server.base_url) as client:
        for path in ("/files/session/state.json", "/files/corpus.db", "/media/nope", "/report/corpus.db"):
            assert client.get(path).status_code == 404, path
        ranged = client.get(f"/media/{hostile_id}", headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and len(ranged.content) == 100
        assert ranged.headers["content-type"] == "video/mp4"
    (data_dir.parent / "secret.txt").write_text("secret")
    for raw in (
        "/report/../corpus.db",
        "/report/%2e%2e/session/state.json",
        "/report//etc/passwd",
        "/report/report_figures/..%2f..%2fcorpus.db",
        "/report/report_figures/../../../secret.txt",
    ):
        assert _raw_get(server.base_url, raw) == 404, raw


def test_a_row_naming_a_file_outside_the_downloads_is_served_by_no_route(demo_corpus, tmp_path):
    """The cookies and the database share the data dir with the downloads: a media row naming them (as
    another host sharing the database may write one), or a link in videos/ to them, served them."""
    corpus = copy_of(demo_corpus, tmp_path)
    data_dir = corpus.settings.data_dir
    cookies = session_dir(corpus.settings) / STATE_FILE
    with open_store(corpus.settings) as store:
        with store.transaction() as session:
            kept, *hostile = session.scalars(select(MediaFile).order_by(MediaFile.video_id).limit(4)).all()
            link = data_dir / hostile[2].path
            link.unlink()
            link.symlink_to(cookies)
            hostile[0].path = "corpus.db"
            hostile[1].path = str(cookies.relative_to(data_dir))
            ids = [media.video_id for media in hostile]
            kept_id = kept.video_id
        app = browse_app(corpus.settings, store, Catalog(store), host="127.0.0.1")
        with TestClient(app, base_url="http://127.0.0.1:8765") as client:
            assert client.get(f"/media/{kept_id}").status_code == 200
            for video_id in ids:
                assert client.get(f"/media/{video_id}").status_code == 404, video_id
                assert client.get(f"/poster/{video_id}.jpg").status_code == 404, video_id


def test_requests_must_name_this_machine_and_responses_forbid_scripts(served, corpus):
    """A web page whose name an attacker pointed at 127.0.0.1 (DNS rebinding) gets nothing; the address
    bound is a name of this machine too. Every response forbids scripts and MIME sniffing."""
    server, _, catalog = served
    port = server.base_url.rsplit(":", 1)[1]
    for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert _raw_get(server.base_url, "/", host=host) == 200, host
    assert _raw_get(server.base_url, "/", host=f"rebind.attacker.example:{port}") == 400
    assert _raw_get(server.base_url, "/media/x", host="rebind.attacker.example") == 400
    with (
        open_store(corpus.settings) as store,
        BrowseServer(corpus.settings, store, catalog, host="127.0.0.2") as other,
    ):
        assert _raw_get(other.base_url, "/") == 200  # Host: 127.0.0.2, the address bound
        assert _raw_get(other.base_url, "/", host="rebind.attacker.example") == 400
    with open_store(corpus.settings) as store:
        # Every address at once would answer 400 to every request naming one of them: refused, saying what to do.
        for wildcard in ("0.0.0.0", "::", "0", "0.0", "0x0", "::ffff:0.0.0.0"):  # all of them 0.0.0.0 to the bind
            with pytest.raises(ConfigError, match=f"--host {re.escape(wildcard)} listens on every address.*bind this"):
                BrowseServer(corpus.settings, store, catalog, host=wildcard)
        app = browse_app(corpus.settings, store, catalog, host="fd00::5")  # an IPv6 address is named in brackets
        with TestClient(app, base_url="http://[fd00::5]:8765") as client:
            assert client.get("/queue").status_code == 200
            assert client.get("/queue", headers={"host": "rebind.attacker.example"}).status_code == 400
    with httpx.Client(base_url=server.base_url) as client:
        for path in ("/", "/queue", "/media/nope"):
            headers = client.get(path).headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path


def _raw_get(base_url: str, target: str, *, host: str | None = None) -> int:
    """The status of a GET sent as written (clients normalise ``..`` away before sending), with the
    ``Host`` header given (else the server's address)."""
    address, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((address, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host or address}\r\nConnection: close\r\n\r\n".encode())
        return int(sock.recv(64).split(b" ")[1])


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to bind")
def test_an_ipv6_address_may_be_given_as_a_url_writes_it(served, corpus):
    """``--host [::1]``, as copied from a URL, failed to start: "Name or service not known"."""
    _, _, catalog = served
    with open_store(corpus.settings) as store, BrowseServer(corpus.settings, store, catalog, host="[::1]") as server:
        assert server.base_url.startswith("http://[::1]:")
        assert httpx.get(f"{server.base_url}/queue", timeout=10).status_code == 200


def test_a_port_in_use_is_a_clear_error(served, corpus):
    server, _, catalog = served
    port = int(server.base_url.rsplit(":", 1)[1])
    with open_store(corpus.settings) as store:
        second = BrowseServer(corpus.settings, store, catalog, port=port)
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


def test_posters_are_made_in_the_background_and_a_stop_ends_them(demo_corpus, tmp_path):
    """The server answers before the posters are made (an hour of ffmpeg runs on a large corpus came
    first); each one lands, and a stop cancels those not started."""
    corpus = copy_of(demo_corpus, tmp_path)
    posters = corpus.settings.data_dir / "posters"
    shutil.rmtree(posters, ignore_errors=True)
    with open_store(corpus.settings) as store:
        catalog = Catalog(store)
        reported: list[tuple[int, int]] = []
        stop = threading.Event()
        stop.set()
        make_posters_in_background(
            corpus.settings.data_dir, catalog, stop=stop, done=lambda *made: reported.append(made)
        ).join(60)
        files = catalog.rows().dropna(subset=["media_path"])
        assert reported == [] and len(list(posters.glob("*.jpg"))) < len(files) / 2  # only those already started

        thread = make_posters_in_background(
            corpus.settings.data_dir, catalog, stop=threading.Event(), done=lambda *made: reported.append(made)
        )
        thread.join(120)
        assert not thread.is_alive() and reported == [(len(files), 0)]
        assert {path.stem for path in posters.glob("*.jpg")} == set(files["sha256"])


def test_the_poster_job_reads_no_file_outside_the_data_dir(demo_corpus, tmp_path):
    """A row naming a file outside the data dir (``..``, an absolute path, a link out) is served by no
    route, and the background job must not hand it to ffmpeg either: it read /etc/passwd."""
    corpus = copy_of(demo_corpus, tmp_path)
    data_dir = corpus.settings.data_dir
    shutil.rmtree(data_dir / "posters", ignore_errors=True)
    with open_store(corpus.settings) as store, store.transaction() as session:
        files = session.scalars(select(MediaFile).order_by(MediaFile.video_id)).all()
        kept, escaping = files[:1], files[1:4]
        for media in files[4:]:
            session.delete(media)
        outside = tmp_path / "outside"
        outside.mkdir()
        for media, spelled in zip(escaping, ("relative", "absolute", "link"), strict=True):
            video = shutil.copy(data_dir / media.path, outside / f"{media.video_id}.mp4")  # a real video
            if spelled == "link":
                (data_dir / media.path).unlink()
                (data_dir / media.path).symlink_to(video)
            else:
                media.path = str(video) if spelled == "absolute" else os.path.relpath(video, data_dir)
        expected = {media.sha256 for media in kept}
    with open_store(corpus.settings) as store:
        assert make_posters(data_dir, Catalog(store)) == (1, 3)
    assert {path.stem for path in (data_dir / "posters").glob("*.jpg")} == expected


def test_posters_asked_at_once_run_a_few_decoders_and_one_per_file(tmp_path):
    """A grid page asks its 48 posters at once: at most ``workers`` are made at a time, and requests for
    a poster being made wait for that one run instead of decoding the file again."""
    running, most, runs, lock = 0, 0, Counter(), threading.Lock()
    release = threading.Event()

    def make(source: Path, cache_dir: Path, *, sha256: str | None) -> Path:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            runs[sha256] += 1
        release.wait(30)
        made = poster_path(cache_dir, sha256)
        made.parent.mkdir(parents=True, exist_ok=True)
        made.write_bytes(b"jpeg")
        with lock:
            running -= 1
        return made

    requests = PosterRequests(tmp_path / "posters", workers=2, make=make)
    shas = [f"{n:064x}" for n in range(6) for _ in range(4)]  # six files, each asked four times
    with ThreadPoolExecutor(len(shas)) as pool:
        asked = [pool.submit(requests.poster, tmp_path / f"{sha}.mp4", sha) for sha in shas]
        wait_for(lambda: running == 2, "two decoders running")
        release.set()
        made = [future.result(timeout=30) for future in asked]
    assert most == 2 and set(runs.values()) == {1}, (most, runs)
    assert made == [poster_path(tmp_path / "posters", sha) for sha in shas]
