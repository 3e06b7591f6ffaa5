"""The downloader's decisions, against httpx.MockTransport (a stand-in for tiktok.com) and real ffprobe/SQLite.

The fault tests over real sockets against the replica are in test_download_replica.py.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.media_files import date_now, zero_middle
from tests.waiting import until
from tiktok_corpus import media
from tiktok_corpus.download import check_size, download_pending, sniff_body, status_error, video_file_path
from tiktok_corpus.download import run as download_run
from tiktok_corpus.download.checks import accept_media
from tiktok_corpus.errors import ContractError, DownloadError, MediaError, SiteUnreachable
from tiktok_corpus.store.models import MediaFile, Video

SITE = "http://site.test"
CDN = "http://cdn.test"
COOKIES = [{"name": "tt_chain_token", "value": "tok", "domain": "cdn.test", "path": "/"}]


@pytest.fixture
def site_settings(settings):
    return settings.model_copy(update={"base_url": SITE})


def url(name: str, **query) -> dict:
    tail = "&".join(f"{k}={v}" for k, v in query.items())
    return {"kind": name, "url": f"{CDN}/v/{name}" + (f"?{tail}" if tail else ""), "data_size": None, "codec": "h264"}


def page_html(video_id: str, *, status: int = 0, play: str | None = None) -> str:
    struct = {"id": video_id, "video": {"playAddr": play}} if play else None
    scope = {"__DEFAULT_SCOPE__": {"webapp.video-detail": {"statusCode": status, "itemInfo": {"itemStruct": struct}}}}
    return (
        f'<html><script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">'
        f"{json.dumps(scope)}</script></html>"
    )


def run(store, settings, handler, options, **kwargs):
    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await download_pending(
                store, settings, client=client, options=options, cookies=kwargs.pop("cookies", COOKIES), **kwargs
            )

    return asyncio.run(go())


# --- pure checks ------------------------------------------------------------------------------------


def test_sniff_body_names_what_a_body_is():
    assert sniff_body(b"\x00\x00\x00\x20ftypisom") is None
    assert sniff_body(b"  <!DOCTYPE html>") == "html_body"
    assert sniff_body(b'{"statusCode"') == "json_body"
    assert sniff_body(b"\x1a\x45\xdf\xa3abcd") == "not_video"


def test_check_size_demands_every_stated_size():
    check_size(10, content_length=10, total=10, declared=10)
    with pytest.raises(DownloadError) as short:
        check_size(9, content_length=9, total=10, declared=None)
    assert (short.value.kind, short.value.retryable) == ("truncated", True)
    with pytest.raises(DownloadError) as longer:
        check_size(11, content_length=11, total=None, declared=10)
    assert longer.value.kind == "size_mismatch"
    with pytest.raises(DownloadError) as empty:
        check_size(0, content_length=0, total=None, declared=None)
    assert empty.value.kind == "empty"


@pytest.mark.parametrize(
    "status, kind, retryable",
    [
        (503, "http_503", True),
        (429, "http_429", True),
        (408, "http_408", True),
        (404, "not_found", False),
        (410, "gone", False),
        (403, "forbidden", False),
    ],
)
def test_status_errors_are_transient_or_final(status, kind, retryable):
    error = status_error(status, f"{CDN}/v/x?expire=9999999999", now=1000.0)
    assert (error.kind, error.retryable) == (kind, retryable)


@pytest.mark.parametrize("kind", ["timeout", "interrupted"])
def test_a_landed_files_probe_cut_short_is_tried_again_not_corrupt(kind, tmp_path, monkeypatch):
    """A probe past its time, or stopped by Ctrl-C, says nothing of the file: it was "corrupt", for good."""

    def cut_short(path, timeout):
        raise MediaError(f"probe {path.name}: cut short", kind=kind)

    monkeypatch.setattr(media, "video_codec", cut_short)
    with pytest.raises(DownloadError) as refused:
        accept_media(tmp_path / "landed.mp4", 5.0)
    assert refused.value.kind == kind and refused.value.retryable


def test_403_on_an_expired_url_says_expired():
    assert status_error(403, f"{CDN}/v/x?expire=500", now=1000.0).kind == "expired"


def test_ids_are_digits_before_they_form_a_path(tmp_path):
    assert video_file_path(tmp_path, "7012345678").relative_to(tmp_path).as_posix() == "videos/70/7012345678.mp4"
    with pytest.raises(ContractError):
        video_file_path(tmp_path, "../../etc/passwd")


# --- one run over a mock site ---------------------------------------------------------------------


def test_falls_through_candidates_and_lands_a_byte_identical_file(store, site_settings, rows, quick, sample_mp4):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v/gear":
            return httpx.Response(404)
        return httpx.Response(
            206,
            content=sample_mp4,
            headers={"content-type": "video/mp4", "content-range": f"bytes 0-{len(sample_mp4) - 1}/{len(sample_mp4)}"},
        )

    rows.add("7000000000000000001", [url("gear"), url("play_addr")])
    summary = run(store, site_settings, handler, quick, user_agent="UA/1.0")

    assert (summary.downloaded, summary.failed, summary.bytes) == (1, 0, len(sample_mp4))
    final = video_file_path(site_settings.data_dir, "7000000000000000001")
    assert final.read_bytes() == sample_mp4
    media = rows.media("7000000000000000001")
    assert media.sha256 == hashlib.sha256(sample_mp4).hexdigest()
    assert (media.path, media.size_bytes, media.source_url_kind) == (
        "videos/70/7000000000000000001.mp4",
        len(sample_mp4),
        "play_addr",
    )
    row = rows.video("7000000000000000001")
    assert (row.download_status, row.probe_status) == ("downloaded", "pending")
    assert [(a.method, a.url_kind, a.http_status, a.outcome) for a in rows.attempts(row.id)] == [
        ("http", "gear", 404, "not_found"),
        ("http", "play_addr", 206, "ok"),
    ]
    cdn = seen[-1]
    assert cdn.headers["range"] == "bytes=0-"
    assert cdn.headers["user-agent"] == "UA/1.0"
    assert cdn.headers["referer"] == f"{SITE}/"
    assert "tt_chain_token=tok" in cdn.headers["cookie"]
    assert rows.part_files(site_settings.data_dir) == []


def test_retries_503_then_succeeds(store, site_settings, rows, quick, sample_mp4):
    calls = []

    def handler(request):
        calls.append(request.url.path)
        if len(calls) <= 2:
            return httpx.Response(503, headers={"retry-after": "0"})
        return httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})

    rows.add("7000000000000000002", [url("gear")])
    summary = run(store, site_settings, handler, quick)
    assert summary.downloaded == 1
    assert [a.outcome for a in rows.attempts("7000000000000000002")] == ["http_503", "http_503", "ok"]


@pytest.mark.parametrize(
    "fault, kind",
    [
        ("html_200", "html_body"),
        ("html_as_video", "html_body"),
        ("json", "json_body"),
        ("zero", "empty"),
        ("noise", "not_video"),
        ("short_of_datasize", "truncated"),
        ("corrupt", "corrupt"),
    ],
)
def test_bad_bodies_are_never_accepted(store, site_settings, rows, quick, sample_mp4, fault, kind):
    def body() -> tuple[bytes, str]:
        if fault == "html_200":
            return b"<html>Access Denied</html>", "text/html"
        if fault == "html_as_video":
            return b"<html>Access Denied</html>", "video/mp4"
        if fault == "json":
            return b'{"statusCode": 10204}', "application/json"
        if fault == "zero":
            return b"", "video/mp4"
        if fault == "noise":
            return bytes(range(256)) * 4, "video/mp4"
        if fault == "corrupt":  # a real ftyp box, then garbage
            return sample_mp4[:32] + bytes(len(sample_mp4) - 32), "video/mp4"
        return sample_mp4, "video/mp4"

    def handler(request):
        if request.url.host == "site.test":
            return httpx.Response(404)
        content, content_type = body()
        return httpx.Response(200, content=content, headers={"content-type": content_type})

    candidate = url("gear") | ({"data_size": len(sample_mp4) + 100} if fault == "short_of_datasize" else {})
    rows.add("7000000000000000003", [candidate])
    summary = run(store, site_settings, handler, replace(quick, attempts=2))

    row = rows.video("7000000000000000003")
    assert (summary.downloaded, summary.failed) == (0, 1)
    assert (row.download_status, row.download_error_kind) == ("failed", kind)
    assert rows.media(row.id) is None
    assert not video_file_path(site_settings.data_dir, row.id).exists()
    assert rows.part_files(site_settings.data_dir) == []
    assert summary.failures == {kind: 1}


def test_403_refreshes_urls_from_the_page_and_stores_them(store, site_settings, rows, quick, sample_mp4):
    video_id = "7000000000000000004"

    def handler(request):
        if request.url.host == "site.test":
            return httpx.Response(
                200,
                text=page_html(video_id, play=f"{CDN}/v/fresh"),
                headers={"set-cookie": "tt_chain_token=new; Domain=cdn.test; Path=/"},
            )
        if request.url.path == "/v/fresh":
            return httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})
        return httpx.Response(403, text="Access Denied", headers={"content-type": "text/html"})

    rows.add(video_id, [url("gear"), url("play_addr")])
    summary = run(store, site_settings, handler, quick)
    assert summary.downloaded == 1
    assert [(a.url_kind, a.outcome) for a in rows.attempts(video_id)] == [("gear", "forbidden"), ("play_addr", "ok")]
    assert [u["url"] for u in rows.video(video_id).media_urls] == [f"{CDN}/v/fresh"]


def test_expired_urls_are_refreshed_without_being_requested(store, site_settings, rows, quick, sample_mp4):
    video_id = "7000000000000000005"
    requested = []

    def handler(request):
        requested.append(str(request.url))
        if request.url.host == "site.test":
            return httpx.Response(200, text=page_html(video_id, play=f"{CDN}/v/fresh?expire=99999999999"))
        return httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})

    rows.add(video_id, [url("gear", expire=100)])
    assert run(store, site_settings, handler, quick).downloaded == 1
    assert not any("expire=100" in r for r in requested)


def test_a_deleted_item_is_a_final_expected_failure(store, site_settings, rows, quick):
    def handler(request):
        if request.url.host == "site.test":
            return httpx.Response(200, text=page_html("7000000000000000006", status=10204))
        return httpx.Response(403)

    rows.add("7000000000000000006", [url("gear")])
    summary = run(store, site_settings, handler, quick)
    row = rows.video("7000000000000000006")
    assert (row.download_status, row.download_error_kind) == ("failed", "deleted")
    assert summary.failures == {"deleted": 1}


def test_files_already_downloaded_are_verified_and_not_fetched_again(store, site_settings, rows, quick, sample_mp4):
    fetches = []

    def handler(request):
        fetches.append(request)
        return httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})

    rows.add("7000000000000000007", [url("gear")])
    run(store, site_settings, handler, quick)
    with store.transaction() as session:  # e.g. an operator re-queued it
        session.get(type(rows.video("7000000000000000007")), "7000000000000000007").download_status = "pending"
    again = run(store, site_settings, handler, quick)
    assert (again.verified, again.downloaded, len(fetches)) == (1, 0, 1)
    assert rows.video("7000000000000000007").download_status == "downloaded"


@pytest.mark.parametrize("damage", ["zeroed_in_place", "swapped"])
def test_retry_failed_fetches_again_the_files_validate_found_damaged_or_gone(
    any_db_url, tmp_path, rows_of, quick, sample_mp4, mp4_of_size, damage
):
    """A file damaged in place (same size) or swapped for another video's is ``corrupt`` (``changed``)
    with the download's sha256 kept, as a file gone is ``missing_file``: a plain run leaves the rows
    ``downloaded``, ``--retry-failed`` fetches them again (never "verifying" the damaged bytes), and
    validate then finds them valid."""
    from tiktok_corpus.config import Settings
    from tiktok_corpus.store.db import open_store, upgrade_database
    from tiktok_corpus.validate import run_validate

    settings = Settings(data_dir=tmp_path / "data", db_url=any_db_url, base_url=SITE)
    upgrade_database(settings)
    db = open_store(settings)
    damaged, gone, other = "7000000000000000013", "7000000000000000014", "7000000000000000016"
    served = {damaged: sample_mp4, gone: sample_mp4, other: mp4_of_size(len(sample_mp4) + 500)}
    handler = lambda r: httpx.Response(  # noqa: E731
        200, content=served[r.url.path.rsplit("/", 1)[1]], headers={"content-type": "video/mp4"}
    )
    try:
        rows = rows_of(db)
        for video_id in served:
            rows.add(video_id, [url(video_id)])
        assert run(db, settings, handler, quick).downloaded == 3
        assert run_validate(settings, min_frames=10, workers=1).counts == {"valid": 3}  # the sample's 10 frames
        sha256 = {video_id: rows.media(video_id).sha256 for video_id in served}
        path = video_file_path(settings.data_dir, damaged)
        if damage == "swapped":
            shutil.copyfile(video_file_path(settings.data_dir, other), path)
            date_now(path)
        else:
            zero_middle(path, 1024)
        video_file_path(settings.data_dir, gone).unlink()

        found = run_validate(settings, min_frames=10, workers=1)
        assert (found.counts, found.reasons) == (
            {"corrupt": 1, "missing_file": 1, "valid": 1},
            {"changed": 1, "missing_file": 1},
        )
        assert (rows.video(damaged).probe_error_kind, rows.media(damaged).sha256) == ("changed", sha256[damaged])

        assert run(db, settings, handler, quick).downloaded == 0, "a plain run leaves downloaded rows alone"
        again = run(db, settings, handler, quick, retry_failed=True)

        assert (again.downloaded, again.verified) == (2, 0)
        for video_id in (damaged, gone):
            assert video_file_path(settings.data_dir, video_id).read_bytes() == served[video_id]
            assert rows.media(video_id).sha256 == hashlib.sha256(served[video_id]).hexdigest()
            row = rows.video(video_id)
            assert (row.download_status, row.probe_status) == ("downloaded", "pending")
        assert run_validate(settings, min_frames=10, workers=1).counts == {"valid": 3}
        assert {video_id: rows.media(video_id).probed_sha256 for video_id in served} == sha256
    finally:
        db.dispose()


def test_a_non_digit_id_fails_without_touching_the_disk(store, site_settings, rows, quick):
    rows.add("../../x", [url("gear")])
    summary = run(store, site_settings, lambda r: httpx.Response(500), quick)
    assert summary.failures == {"bad_id": 1}
    assert not (site_settings.data_dir / "videos").exists()


def test_oversize_bodies_are_refused(store, site_settings, rows, quick, sample_mp4):
    rows.add("7000000000000000008", [url("gear")])
    handler = lambda r: httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})  # noqa: E731
    summary = run(store, site_settings, handler, replace(quick, max_bytes=len(sample_mp4) - 1, refreshes=0))
    assert summary.failures == {"too_large": 1}
    assert rows.part_files(site_settings.data_dir) == []


def test_a_file_over_the_limit_is_final(store, site_settings, rows, quick, sample_mp4):
    """No fresh URLs and no yt-dlp after a too-large answer: yt-dlp cannot always tell a file's size first."""
    requested = []

    def handler(request):
        requested.append(request.url.host)
        return httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})

    rows.add("7000000000000000015", [url("gear")])
    options = replace(quick, max_bytes=len(sample_mp4) - 1, use_ytdlp=True)
    summary = run(store, site_settings, handler, options)

    assert summary.failures == {"too_large": 1}
    assert [(a.method, a.outcome) for a in rows.attempts("7000000000000000015")] == [("http", "too_large")]
    assert requested == ["cdn.test"], "the item was refreshed"


def test_a_full_disk_stops_the_run_and_gives_rows_back(store, site_settings, rows, quick, sample_mp4):
    rows.add("7000000000000000009", [url("gear")])
    handler = lambda r: httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})  # noqa: E731
    with pytest.raises(DownloadError) as stopped:
        run(store, site_settings, handler, replace(quick, min_free_bytes=10**18))
    assert stopped.value.kind == "no_space"
    assert rows.video("7000000000000000009").download_status == "pending"


def test_a_data_folder_that_takes_no_file_stops_the_run_and_gives_rows_back(
    store, site_settings, rows, quick, sample_mp4, monkeypatch
):
    """A read-only or foreign data folder fails every row alike: one clear error and the rows untouched,
    not each row failed as an internal error with a traceback of its own."""
    ids = [f"70000000000000002{n:02d}" for n in range(4)]
    for video_id in ids:
        rows.add(video_id, [url("gear")])
    videos = site_settings.data_dir / "videos"
    make_directory = Path.mkdir

    def on_a_read_only_disk(path, *args, **kwargs):
        if path.is_relative_to(videos):  # the operating system's answer there; the root cannot be denied
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return make_directory(path, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", on_a_read_only_disk)
    handler = lambda r: httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})  # noqa: E731
    with pytest.raises(DownloadError) as stopped:
        run(store, site_settings, handler, quick, concurrency=4)
    assert stopped.value.kind == "not_permitted"
    assert stopped.value.message.startswith(f"{videos}/70: read-only file system (give this user the right")
    assert [rows.video(video_id).download_status for video_id in ids] == ["pending"] * 4


def test_a_failure_the_database_refuses_to_record_stops_the_run_instead_of_hanging_it(
    store, site_settings, rows, quick
):
    """A worker whose failure write raised died without waking the claimer: once most had, the run
    waited for ever, its leases renewed, so no other process could take the rows either."""
    ids = [f"70000000000000003{n:02d}" for n in range(8)]
    for video_id in ids:
        rows.add(video_id, [url("gear")])
    with store.transaction() as session:  # the database itself refuses the write (as a locked or full one does)
        session.execute(
            text(
                "CREATE TRIGGER refuse_failures BEFORE UPDATE OF download_status ON videos"
                " WHEN NEW.download_status = 'failed' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        )

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404))) as client:
            await download_pending(store, site_settings, client=client, options=quick, cookies=COOKIES, concurrency=2)

    with pytest.raises(DBAPIError, match="refused by the test"):
        asyncio.run(asyncio.wait_for(go(), 60))
    assert {rows.video(video_id).download_status for video_id in ids} == {"pending"}  # given back, none lost


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_a_site_gone_down_stops_the_run_as_unreachable_and_fails_no_row(store, site_settings, rows, quick):
    """Crawl and track stop after eight requests without an answer; a download failed every row for good
    (then named ytdlp_failed), and the next run found nothing to do without --retry-failed."""
    ids = [f"70000000000000004{n:02d}" for n in range(12)]
    for video_id in ids:
        rows.add(video_id, [url("gear")])

    with pytest.raises(SiteUnreachable) as stopped:
        run(store, site_settings, refused, replace(quick, attempts=1), concurrency=2)

    assert stopped.value.exit_code == 4 and "did not answer the last 8 files" in stopped.value.message
    assert stopped.value.summary is not None and stopped.value.summary["failed"] == 0
    assert stopped.value.summary["seconds"] > 0  # it read 0.0: taken before the run's time was counted
    assert {rows.video(video_id).download_status for video_id in ids} == {"pending"}


def test_a_file_whose_host_alone_is_down_fails_once_another_file_gets_an_answer(
    store, site_settings, rows, quick, sample_mp4
):
    def handler(request: httpx.Request) -> httpx.Response:  # the CDN answers but for one URL; the site never
        if request.url.path.endswith("/dead") or request.url.host == "site.test":
            return refused(request)
        return httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})

    rows.add("7000000000000000501", [url("dead")])
    rows.add("7000000000000000502", [url("gear")])
    summary = run(store, site_settings, handler, replace(quick, attempts=1), concurrency=1)

    assert (summary.downloaded, dict(summary.failures)) == (1, {"transport": 1})
    assert rows.video("7000000000000000501").download_status == "failed"


def test_failed_rows_are_retried_only_when_asked(store, site_settings, rows, quick, sample_mp4):
    rows.add("7000000000000000010", [url("gear")], status="failed")
    handler = lambda r: httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})  # noqa: E731
    assert run(store, site_settings, handler, quick).downloaded == 0
    assert run(store, site_settings, handler, quick, retry_failed=True).downloaded == 1


def test_a_file_that_cannot_be_put_in_place_fails_alone(store, site_settings, rows, quick, sample_mp4):
    """Landings waiting together commit in one transaction; one that cannot land must not take the others."""
    handler = lambda r: httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})  # noqa: E731
    ids = [f"70000000000000001{n:02d}" for n in range(8)]
    for video_id in ids:
        rows.add(video_id, [url("gear")])
    blocked = video_file_path(site_settings.data_dir, ids[3])
    blocked.mkdir(parents=True)  # a directory where the file should go: the rename fails

    summary = run(store, site_settings, handler, quick, concurrency=8)

    assert (summary.downloaded, summary.failures) == (7, {"internal_error": 1})
    assert rows.video(ids[3]).download_status == "failed" and rows.media(ids[3]) is None
    assert blocked.is_dir()
    for video_id in ids[:3] + ids[4:]:
        assert rows.video(video_id).download_status == "downloaded"
        assert video_file_path(site_settings.data_dir, video_id).read_bytes() == sample_mp4
        assert rows.media(video_id).sha256 == hashlib.sha256(sample_mp4).hexdigest()
    assert rows.part_files(site_settings.data_dir) == []


def test_follow_mode_picks_up_rows_added_while_it_runs(store, site_settings, rows, quick, sample_mp4):
    rows.add("7000000000000000011", [url("gear", n=11)])

    async def go():
        follow = asyncio.Event()
        fetched = {"n=11": asyncio.Event(), "n=12": asyncio.Event()}

        def handler(request):
            fetched[request.url.query.decode()].set()
            return httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            running = asyncio.create_task(
                download_pending(
                    store,
                    site_settings,
                    client=client,
                    cookies=COOKIES,
                    follow=follow,
                    options=replace(quick, poll_s=0.05),
                )
            )
            await asyncio.wait_for(fetched["n=11"].wait(), 30)  # the run is under way
            rows.add("7000000000000000012", [url("gear", n=12)])  # the crawler finds another one
            await asyncio.wait_for(fetched["n=12"].wait(), 30)  # found by polling, before follow is set
            follow.set()
            return await running

    summary = asyncio.run(go())
    assert summary.downloaded == 2


@pytest.mark.postgres
def test_downloads_land_on_postgres_too(pg_url, tmp_path, rows_of, quick, sample_mp4):
    from tiktok_corpus.config import Settings
    from tiktok_corpus.store.db import open_store, upgrade_database

    pg_settings = Settings(data_dir=tmp_path / "data", db_url=pg_url, base_url=SITE)
    upgrade_database(pg_settings)
    pg_store = open_store(pg_settings)
    try:
        rows = rows_of(pg_store)
        for n in range(3):
            rows.add(f"700000000000000010{n}", [url("gear")])
        handler = lambda r: httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})  # noqa: E731
        summary = run(pg_store, pg_settings, handler, quick, concurrency=2)
        assert summary.downloaded == 3
        assert all(
            rows.media(f"700000000000000010{n}").sha256 == hashlib.sha256(sample_mp4).hexdigest() for n in range(3)
        )
    finally:
        pg_store.dispose()


def test_a_damaged_file_is_fetched_again_and_its_row_overwritten(any_db_url, tmp_path, rows_of, quick, sample_mp4):
    from tiktok_corpus.config import Settings
    from tiktok_corpus.store.db import open_store, upgrade_database

    settings = Settings(data_dir=tmp_path / "data", db_url=any_db_url, base_url=SITE)
    upgrade_database(settings)
    db = open_store(settings)
    video_id = "7000000000000000201"
    handler = lambda r: httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})  # noqa: E731
    try:
        rows = rows_of(db)
        rows.add(video_id, [url("gear")])
        assert run(db, settings, handler, quick).downloaded == 1
        stored = settings.data_dir / rows.media(video_id).path
        stored.write_bytes(bytes(len(sample_mp4)))  # same size, other bytes: only the sha256 tells
        with db.transaction() as session:  # it had been validated, and is queued again
            media = session.get(MediaFile, video_id)
            media.probed_sha256, media.probed_at = "0" * 64, media.downloaded_at
            session.get(Video, video_id).download_status = "pending"
        again = run(db, settings, handler, quick)
        assert (again.downloaded, again.verified) == (1, 0)
        media = rows.media(video_id)
        assert media.sha256 == hashlib.sha256(sample_mp4).hexdigest() and stored.read_bytes() == sample_mp4
        assert media.probed_sha256 is None and media.probed_at is None, "the old probe no longer describes it"
        assert rows.video(video_id).probe_status == "pending" and len(rows.attempts(video_id)) == 2
    finally:
        db.dispose()


def test_transfers_in_flight_never_exceed_the_concurrency(store, site_settings, rows, quick, sample_mp4):
    in_flight, most = 0, 0
    full = asyncio.Event()  # set once as many requests are in flight as allowed: until then each one waits

    async def handler(request):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == 3:
            full.set()
        await asyncio.wait_for(full.wait(), 30)
        for _ in range(10):  # hold the slot for a few turns of the loop: a transfer over the limit would start now
            await asyncio.sleep(0)
        in_flight -= 1
        return httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})

    for n in range(12):
        rows.add(f"70000000000000003{n:02d}", [url("gear")])
    summary = run(store, site_settings, handler, replace(quick, per_host=10), concurrency=3)
    assert summary.downloaded == 12 and most == 3


def test_no_more_rows_are_claimed_than_the_workers_can_start(
    store, site_settings, rows, quick, sample_mp4, monkeypatch
):
    """A claimed row waits for no one: a run holds at most two jobs per transfer slot (one each worker)."""
    from sqlalchemy import func, select

    from tiktok_corpus.download import run as download_run

    claim_downloads = download_run.claim_downloads
    in_hand_after_claims = []

    def counting(store, limit, **kwargs):  # rows claimed now, and as many more as this claim may take
        with store.sessions() as session:
            held = session.scalar(select(func.count()).where(Video.download_status == "claimed"))
        in_hand_after_claims.append(held + limit)
        return claim_downloads(store, limit, **kwargs)

    monkeypatch.setattr(download_run, "claim_downloads", counting)
    handler = lambda r: httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})  # noqa: E731
    for n in range(12):
        rows.add(f"70000000000000004{n:02d}", [url("gear")])
    summary = run(store, site_settings, handler, quick, concurrency=2)

    assert summary.downloaded == 12
    assert max(in_hand_after_claims) <= 4, in_hand_after_claims


def test_stale_part_files_are_removed_unless_a_live_claim_writes_them(store, site_settings, rows):
    from datetime import timedelta

    from tiktok_corpus.download import remove_stale_parts
    from tiktok_corpus.store.models import Video, utcnow

    rows.add("7100000000000000001", [url("gear")])
    rows.add("7100000000000000002", [url("gear")])
    with store.transaction() as session:  # another live worker is writing the second one
        busy = session.get(Video, "7100000000000000002")
        busy.download_status, busy.download_lease_until = "claimed", utcnow() + timedelta(minutes=5)
    stale, live = (
        video_file_path(site_settings.data_dir, i).with_suffix(".mp4.part")
        for i in ("7100000000000000001", "7100000000000000002")
    )
    for part in (stale, live):
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"half a file")
    assert remove_stale_parts(store, site_settings.data_dir) == 1
    assert (stale.exists(), live.exists()) == (False, True)


def test_a_bug_in_the_lease_renewal_is_raised_not_dropped(store, site_settings, rows, quick, sample_mp4, monkeypatch):
    """The renewal keeps a transfer's claim alive; one that ends on an error that is not the database's
    would let the claims lapse silently: the run raises it once its transfers are settled."""
    rows.add("7000000000000000011", [url("gear")])
    tried = threading.Event()

    def renew_with_a_bug(*args, **kwargs):
        tried.set()
        raise TypeError("a bug in the renewal")

    monkeypatch.setattr(download_run, "renew", renew_with_a_bug)

    async def slow_cdn(request: httpx.Request) -> httpx.Response:  # answers once a renewal was tried
        await until(tried.is_set, "a lease renewal")
        return httpx.Response(200, content=sample_mp4, headers={"content-type": "video/mp4"})

    with pytest.raises(TypeError, match="a bug in the renewal"):
        run(store, site_settings, slow_cdn, replace(quick, lease_s=0.3))


def test_the_download_site_is_the_one_named_else_the_latest_crawl_s(any_db_url, tmp_path):
    from tiktok_corpus.config import DEFAULT_BASE_URL, Settings
    from tiktok_corpus.download import download_site
    from tiktok_corpus.store.crawl_runs import end_run, start_run
    from tiktok_corpus.store.db import open_store, upgrade_database

    settings = Settings(data_dir=tmp_path / "data", db_url=any_db_url)
    upgrade_database(settings)
    fresh = download_site(settings, given=False)
    assert (fresh.base_url, fresh.crawled, fresh.inherited, fresh.elsewhere) == (DEFAULT_BASE_URL, None, False, False)

    with open_store(settings) as store:
        start_run(store, {"seeds": 3, "base_url": "http://first.test"})
        start_run(store, {"seeds": 3, "base_url": "http://replica.test:8804/"})  # the latest, running still
        start_run(store, {"seeds": 3})  # a run that recorded no site does not count
        for status in ("failed", "unreachable"):  # nor one that may never have reached the site it named
            end_run(store, start_run(store, {"seeds": 3, "base_url": "http://127.0.0.1:9"}), status, {})
    inherited = download_site(settings, given=False)
    assert (inherited.base_url, inherited.crawled, inherited.inherited) == (
        "http://replica.test:8804",
        "http://replica.test:8804",
        True,
    )
    assert not inherited.elsewhere and settings.base_url == DEFAULT_BASE_URL  # the settings given stay as they were

    named = download_site(settings.model_copy(update={"base_url": SITE}), given=True)
    assert (named.base_url, named.inherited, named.elsewhere) == (SITE, False, True)
