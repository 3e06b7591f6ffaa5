"""The downloader against a CDN whose every answer the test writes, over real sockets: claims held by a job
that outlasts its lease, bodies that trickle, break off or outgrow the limit, a disk that fills, and yt-dlp
stopped mid-transfer. Each waits on a state (a file on disk, a row's lease), never on time."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from tests.waiting import until
from tiktok_corpus.config import Settings
from tiktok_corpus.download import download_pending, video_file_path
from tiktok_corpus.download.jobs import NoSpace, PartDirectories
from tiktok_corpus.errors import DownloadError
from tiktok_corpus.store.db import open_store, upgrade_database
from tiktok_corpus.store.models import utcnow
from tiktok_corpus.store.queue import claim

OTHER_WORKER = "elsewhere:1:download"


def video_part_sizes(data_dir) -> list[int]:
    """Sizes of the video ``.part`` files being written now (not cookie files; one gone meanwhile is skipped)."""
    sizes = []
    for path in sorted(data_dir.rglob("*.part")):
        if ".cookies" in path.name:
            continue
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            pass
    return sizes


def held_until(cdn, event: threading.Event, first: bytes, rest: bytes, length: int | None):
    """A route that sends its headers and ``first``, then ``rest`` once ``event`` is set."""

    def route(handler) -> None:
        cdn.head(handler, length)
        handler.wfile.write(first)
        handler.wfile.flush()
        event.wait(30)
        handler.wfile.write(rest)

    return route


class Endless:
    """A route streaming a video of no stated size, 1 KB a millisecond at most, for as long as the client
    reads (or up to ``cap`` bytes); ``serving`` counts the connections it still writes to, ``finished``
    those that got the whole body."""

    def __init__(self, cdn, first: bytes, cap: int | None = None) -> None:
        self.cdn, self.first, self.cap = cdn, first, cap
        self.serving = self.finished = 0
        self._lock = threading.Lock()

    def __call__(self, handler) -> None:
        with self._lock:
            self.serving += 1
        try:
            self.cdn.head(handler, None)
            handler.wfile.write(self.first)
            sent = len(self.first)
            while self.cap is None or sent < self.cap:
                if self.cdn.stopped.wait(0.001):
                    return
                handler.wfile.write(bytes(1024))
                handler.wfile.flush()
                sent += 1024
            with self._lock:
                self.finished += 1
        finally:
            with self._lock:
                self.serving -= 1


def broken_http() -> httpx.AsyncClient:
    """A client for which every HTTP answer is a 503: only yt-dlp (with its own sockets) gets through."""
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(503)))


# --- claims -----------------------------------------------------------------------------------------


def test_claims_are_renewed_while_a_job_runs(store, cdn, cdn_settings, rows, quick, sample_mp4):
    """A job can outlast one lease (tries, backoff, a refresh, yt-dlp): meanwhile no other worker may take
    its row (and remove its live ``.part`` as a leftover)."""
    video_id = "7200000000000000001"
    go_on = threading.Event()
    cdn.routes["/held"] = held_until(cdn, go_on, b"", sample_mp4, len(sample_mp4))
    rows.add(video_id, [cdn.url("/held")])
    options = replace(quick, lease_s=0.6, min_bytes_per_s=0)

    async def go():
        running = asyncio.create_task(download_pending(store, cdn_settings, cookies=[], options=options))
        try:
            await until(lambda: rows.part_files(cdn_settings.data_dir), "the transfer under way")
            first = rows.video(video_id).download_lease_until
            renewed = lambda: (lease := rows.video(video_id).download_lease_until) is not None and lease > first  # noqa: E731
            await until(renewed, "the lease renewed")
            taken = claim(store, "download", 5, worker=OTHER_WORKER, now=first + timedelta(milliseconds=1))
        finally:
            go_on.set()
        return taken, await running

    taken, summary = asyncio.run(go())
    assert taken == [], "the row was claimable once its first lease ran out"
    assert summary.downloaded == 1
    assert rows.video(video_id).download_attempts == 1
    assert video_file_path(cdn_settings.data_dir, video_id).read_bytes() == sample_mp4


@pytest.mark.parametrize("ending", ["lands", "fails"])
def test_a_job_whose_claim_was_taken_settles_nothing(any_db_url, tmp_path, rows_of, cdn, quick, sample_mp4, ending):
    """A claim that lapsed belongs to the worker that took it: the first job's file is not kept, its
    failure not recorded, its row not given back; its tries are still written down."""
    settings = Settings(data_dir=tmp_path / "data", db_url=any_db_url, base_url=cdn.base_url)
    upgrade_database(settings)
    db = open_store(settings)
    video_id = "7200000000000000002"
    go_on = threading.Event()
    rest = sample_mp4 if ending == "lands" else sample_mp4[:100]  # then the connection closes: truncated
    cdn.routes["/held"] = held_until(cdn, go_on, b"", rest, len(sample_mp4))
    options = replace(quick, attempts=1, refreshes=0, min_bytes_per_s=0)
    try:
        rows = rows_of(db)
        rows.add(video_id, [cdn.url("/held")])

        async def go():
            running = asyncio.create_task(download_pending(db, settings, cookies=[], options=options))
            try:
                await until(lambda: rows.part_files(settings.data_dir), "the transfer under way")
                # As if this run had stalled past its lease: another worker takes the row.
                taken = claim(db, "download", 1, worker=OTHER_WORKER, now=utcnow() + timedelta(hours=1))
            finally:
                go_on.set()
            return taken, await running

        taken, summary = asyncio.run(go())
        assert taken == [video_id]
        row = rows.video(video_id)
        assert (row.download_status, row.download_worker) == ("claimed", OTHER_WORKER)
        assert (summary.downloaded, summary.failed) == (0, 0)
        assert rows.media(video_id) is None
        assert not video_file_path(settings.data_dir, video_id).exists()
        assert rows.part_files(settings.data_dir) == []
        assert [a.outcome for a in rows.attempts(video_id)] == ["ok" if ending == "lands" else "truncated"]
    finally:
        db.dispose()


def test_an_attempt_ended_by_an_unexpected_error_is_not_recorded_ok(store, cdn, cdn_settings, rows, quick, sample_mp4):
    """The ``.part`` vanishes mid-transfer (as when another process removed it): the row fails as an
    internal error, and so does its attempt, with the bytes it received."""
    video_id = "7200000000000000003"
    go_on = threading.Event()
    half = len(sample_mp4) // 2
    cdn.routes["/held"] = held_until(cdn, go_on, sample_mp4[:half], sample_mp4[half:], len(sample_mp4))
    rows.add(video_id, [cdn.url("/held")])

    async def go():
        running = asyncio.create_task(download_pending(store, cdn_settings, cookies=[], options=quick))
        try:
            await until(lambda: rows.part_files(cdn_settings.data_dir), "the transfer under way")
            for part in rows.part_files(cdn_settings.data_dir):
                part.unlink()
        finally:
            go_on.set()
        return await running

    summary = asyncio.run(go())
    assert summary.failures == {"internal_error": 1}
    assert [(a.outcome, a.bytes) for a in rows.attempts(video_id)] == [("internal_error", len(sample_mp4))]


# --- bodies -----------------------------------------------------------------------------------------


def test_a_site_that_is_down_is_named_as_the_reason_not_the_last_resorts_failure(tmp_path, rows_of, quick):
    """Every row of a download against a site gone down was failed as "ytdlp_failed": the last resort's
    failure hid that nothing had answered."""
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, every connection is refused
    settings = Settings(data_dir=tmp_path / "data", base_url=closed)
    with open_store(settings) as store:
        rows = rows_of(store)
        rows.add(
            "7000000000000000501", [{"kind": "gear", "url": f"{closed}/v/a.mp4", "data_size": None, "codec": "h264"}]
        )
        summary = asyncio.run(
            download_pending(store, settings, options=replace(quick, use_ytdlp=True, attempts=1), cookies=[])
        )

        assert dict(summary.failures) == {"transport": 1}
        assert rows.video("7000000000000000501").download_error_kind == "transport"


def test_a_url_httpx_cannot_fetch_or_an_answer_it_cannot_read_moves_on_to_the_next(
    store, cdn, cdn_settings, rows, quick, sample_mp4
):
    """A redirect loop, a body whose stated encoding does not decode, an address with no scheme and one
    that does not parse failed the whole item as an internal error (a traceback in the log) before its
    good URL was tried; a relative address was retried as a site that did not answer."""
    port = cdn.base_url.rsplit(":", 1)[1]

    def redirect_loop(handler) -> None:
        handler.send_response(302)
        handler.send_header("Location", "/loop")
        handler.send_header("Content-Length", "0")
        handler.send_header("Connection", "close")  # the server closes each connection after one answer
        handler.end_headers()

    def false_gzip(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(sample_mp4)))
        handler.end_headers()
        handler.wfile.write(sample_mp4)

    def whole(handler) -> None:
        cdn.head(handler, len(sample_mp4))
        handler.wfile.write(sample_mp4)

    cdn.routes.update({"/loop": redirect_loop, "/gzip": false_gzip, "/good": whole})
    unusable = [
        cdn.url("/loop"),
        cdn.url("/gzip"),
        {"kind": "relative", "url": f"//127.0.0.1:{port}/good", "data_size": None, "codec": "h264"},
        {"kind": "unparsable", "url": "http://[127.0.0.1/good", "data_size": None, "codec": "h264"},
    ]
    rows.add("7200000000000000011", [*unusable, cdn.url("/good")])
    rows.add("7200000000000000012", unusable[2:])
    cookies = [{"name": "tt_chain_token", "value": "t", "domain": "127.0.0.1", "path": "/"}]
    summary = asyncio.run(download_pending(store, cdn_settings, cookies=cookies, options=replace(quick, refreshes=0)))

    assert summary.downloaded == 1 and dict(summary.failures) == {"bad_url": 1}
    assert video_file_path(cdn_settings.data_dir, "7200000000000000011").read_bytes() == sample_mp4
    tried = [(a.url_kind, a.outcome) for a in rows.attempts("7200000000000000011")]
    assert tried == [("loop", "bad_response"), ("gzip", "bad_response"), ("good", "ok")]  # each once: final
    failed = rows.video("7200000000000000012")
    assert failed.download_error_kind == "bad_url" and "not a URL" in failed.download_error


def test_a_server_trickling_bytes_is_cut_off(store, cdn, cdn_settings, rows, quick, sample_mp4):
    """One byte at a time never trips the read timeout; the minimum rate cuts the try (and retries it)."""
    video_id = "7200000000000000004"

    def trickle(handler) -> None:
        cdn.head(handler, len(sample_mp4))
        for byte in sample_mp4[:300]:  # then the connection closes: a body this slow is never finished
            if cdn.stopped.wait(0.01):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()

    cdn.routes["/trickle"] = trickle
    rows.add(video_id, [cdn.url("/trickle")])
    options = replace(quick, read_timeout_s=1.0, attempts=2, refreshes=0)
    summary = asyncio.run(download_pending(store, cdn_settings, cookies=[], options=options))

    assert summary.failures == {"too_slow": 1}
    assert [a.outcome for a in rows.attempts(video_id)] == ["too_slow", "too_slow"]
    assert rows.part_files(cdn_settings.data_dir) == []


def test_a_body_broken_off_before_its_length_is_truncated(store, cdn, cdn_settings, rows, quick, sample_mp4):
    """However few bytes came before the connection broke, they are counted: truncated, not a refusal."""
    video_id = "7200000000000000005"

    def broken_off(handler) -> None:
        cdn.head(handler, len(sample_mp4))
        handler.wfile.write(sample_mp4[:1000])

    cdn.routes["/short"] = broken_off
    rows.add(video_id, [cdn.url("/short")])
    options = replace(quick, attempts=1, refreshes=0)
    summary = asyncio.run(download_pending(store, cdn_settings, cookies=[], options=options))

    assert summary.failures == {"truncated": 1}
    assert [(a.outcome, a.bytes) for a in rows.attempts(video_id)] == [("truncated", 1000)]


def test_a_body_without_length_cut_short_is_retried(store, cdn, cdn_settings, rows, quick, sample_mp4):
    """No Content-Length to compare with: the mp4's boxes tell it is cut short, and a cut body is retried."""
    video_id = "7200000000000000006"
    served: list[int] = []

    def cut_once(handler) -> None:
        served.append(1)
        cdn.head(handler, None)
        handler.wfile.write(sample_mp4 if len(served) > 1 else sample_mp4[: len(sample_mp4) * 2 // 3])

    cdn.routes["/cut"] = cut_once
    rows.add(video_id, [cdn.url("/cut")])
    summary = asyncio.run(download_pending(store, cdn_settings, cookies=[], options=replace(quick, attempts=2)))

    assert summary.downloaded == 1
    assert [a.outcome for a in rows.attempts(video_id)] == ["truncated", "ok"]
    assert video_file_path(cdn_settings.data_dir, video_id).read_bytes() == sample_mp4


# --- disk -------------------------------------------------------------------------------------------


def test_a_disk_filling_up_mid_transfer_stops_the_run_and_gives_the_row_back(
    tmp_path, small_disk, cdn, rows_of, quick, mp4_of_size
):
    """A body of unstated size passes the free-space check, then meets ENOSPC: the run stops with the
    one-line full-disk message, and the row goes back to pending, with no ``.part`` left."""
    disk = small_disk("1m")
    settings = Settings(data_dir=disk, db_url=f"sqlite:///{tmp_path / 'corpus.db'}", base_url=cdn.base_url)
    db = open_store(settings)
    video_id = "7200000000000000007"
    body = mp4_of_size(2_000_000)

    def unsized(handler) -> None:
        cdn.head(handler, None)
        handler.wfile.write(body)

    cdn.routes["/big"] = unsized
    try:
        rows = rows_of(db)
        rows.add(video_id, [cdn.url("/big")])
        with pytest.raises(DownloadError) as stopped:
            asyncio.run(download_pending(db, settings, cookies=[], options=quick))
        assert stopped.value.kind == "no_space"
        assert "free some space, then run the same command again" in stopped.value.message
        assert rows.video(video_id).download_status == "pending"
        assert rows.part_files(disk) == []
    finally:
        db.dispose()


def test_a_declared_size_past_the_largest_file_accepted_stops_no_run(store, cdn, cdn_settings, rows, quick, sample_mp4):
    """A ``DataSize`` of 10^15 on a body of unstated size reserved a petabyte: every run stopped as "disk
    full" on that row, before the files beside it. What is held is at most ``--max-bytes`` (the body must
    stay within it anyway); the body then falls short of the size declared, which fails that row alone."""
    liar, honest = "7200000000000000010", "7200000000000000011"

    def unsized(handler) -> None:
        cdn.head(handler, None)
        handler.wfile.write(sample_mp4)

    cdn.routes["/claims-a-petabyte"] = unsized
    cdn.routes["/unsized"] = unsized
    rows.add(liar, [cdn.url("/claims-a-petabyte", data_size=10**15)])
    rows.add(honest, [cdn.url("/unsized")])
    summary = asyncio.run(download_pending(store, cdn_settings, cookies=[], options=replace(quick, attempts=1)))
    assert (summary.downloaded, summary.failures) == (1, Counter({"truncated": 1}))
    assert video_file_path(cdn_settings.data_dir, honest).read_bytes() == sample_mp4


def test_files_being_written_count_against_the_free_space(tmp_path):
    """The reserve holds for every file being written at once, not for each alone."""
    free = shutil.disk_usage(tmp_path).free
    directories = PartDirectories(min_free_bytes=free // 2, max_file_bytes=free)
    with directories.writing(tmp_path / "a", free // 3):
        with pytest.raises(NoSpace, match="being written"), directories.writing(tmp_path / "b", free // 3):
            pass
    with directories.writing(tmp_path / "b", free // 3):  # the first one is written: the second one fits
        pass


def test_a_write_that_finds_the_disk_full_is_no_space(tmp_path):
    directories = PartDirectories(min_free_bytes=0, max_file_bytes=1)
    with pytest.raises(NoSpace) as stopped, directories.writing(tmp_path, 0), open("/dev/full", "wb") as full:
        full.write(bytes(100_000))  # /dev/full answers every write with ENOSPC
    assert "free some space, then run the same command again" in stopped.value.message


# --- yt-dlp -----------------------------------------------------------------------------------------


def test_ytdlp_stops_a_body_of_unstated_size_past_the_limit(store, cdn, cdn_settings, rows, quick, sample_mp4):
    """yt-dlp's own max_filesize needs a stated size; the limit must hold without one, as the body comes
    (5 MB take the server 5 s at least: the transfer must end long before it is whole)."""
    video_id = "7200000000000000008"
    route = cdn.routes["/unsized"] = Endless(cdn, sample_mp4, cap=5_000_000)
    rows.add(video_id, [cdn.url("/unsized")])
    options = replace(quick, use_ytdlp=True, attempts=1, max_bytes=200_000)

    async def go():
        async with broken_http() as client:
            return await download_pending(store, cdn_settings, client=client, cookies=[], options=options)

    summary = asyncio.run(go())
    assert route.finished == 0, "yt-dlp read the whole body"
    assert summary.failures == {"too_large": 1}
    assert [(a.method, a.outcome) for a in rows.attempts(video_id)][-1] == ("ytdlp", "too_large")
    assert rows.part_files(cdn_settings.data_dir) == []


def test_stopping_during_ytdlp_ends_its_transfer_and_removes_its_files(
    store, cdn, cdn_settings, rows, quick, sample_mp4
):
    """Ctrl-C cancels the run: yt-dlp's thread, which asyncio cannot cancel, is stopped too, and its file
    and the cookie file are gone once it has ended; the row goes back to pending."""
    video_id = "7200000000000000009"

    route = cdn.routes["/endless"] = Endless(cdn, sample_mp4)
    rows.add(video_id, [cdn.url("/endless")])
    options = replace(quick, use_ytdlp=True, attempts=1)

    async def go():
        async with broken_http() as client:
            running = asyncio.create_task(
                download_pending(store, cdn_settings, client=client, cookies=[], options=options)
            )
            try:
                await until(lambda: any(video_part_sizes(cdn_settings.data_dir)), "yt-dlp writing its file")
                running.cancel()
                await asyncio.wait({running}, timeout=30)
                assert running.cancelled(), "the run did not stop"
                left = rows.part_files(cdn_settings.data_dir)
                await until(lambda: route.serving == 0, "yt-dlp's connection closed: its thread stopped")
                return left
            finally:
                cdn.stopped.set()  # a yt-dlp thread still running (the bug) ends with the body

    assert asyncio.run(go()) == [], "yt-dlp's thread was still writing, or its files were left"
    assert rows.video(video_id).download_status == "pending"
