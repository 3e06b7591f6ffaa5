"""The downloader against the replica site over real sockets, with the replica's faults turned on.

Rows are made from the replica's own detail API (parsed by the contract), so these tests do not depend on
the crawler. Every recoverable file must end byte-identical to what the CDN serves; no bad body may land.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import pytest

from tests.waiting import wait_for
from tiktok_corpus.download import download_pending, video_file_path
from tiktok_corpus.errors import PersistentlyBlocked
from tiktok_corpus.replica import Replica, ReplicaConfig
from tiktok_corpus.store.models import Video
from tiktok_corpus.tiktok.contract import detail_api_path, media_urls_json, parse_item_detail

BODY_KINDS = {"empty", "html_body", "json_body", "not_video", "truncated", "size_mismatch", "corrupt"}


class ShiftableClock:
    """The replica's clock: a test moves it back to have URLs issued that are already expired."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


@pytest.fixture(scope="module")
def replica():
    clock = ShiftableClock()
    with Replica(ReplicaConfig(videos=40, seed=3, slow_seconds=1.0), clock=clock) as rep:
        rep.test_clock = clock
        yield rep


@pytest.fixture
def site(replica, settings):
    """Settings pointing at the replica, with faults reset after each test."""
    yield settings.model_copy(update={"base_url": replica.base_url})
    replica.set_faults({})


def playable_ids(replica, n: int) -> list[str]:
    return [v.id for v in replica.catalog.videos if v.kind == "video"][:n]


def seed_rows(store, replica, ids: list[str]) -> None:
    """Video rows as the crawler would store them, from the replica's detail API."""
    with httpx.Client(base_url=replica.base_url) as client, store.transaction() as session:
        for video_id in ids:
            record = parse_item_detail(client.get(detail_api_path(video_id)).content)
            session.add(
                Video(
                    id=record.id,
                    item_kind=record.kind,
                    declared_size=record.size,
                    media_urls=media_urls_json(record.media_urls),
                )
            )


def assert_all_landed(site, rows, replica, ids: list[str]) -> None:
    for video_id in ids:
        row = rows.video(video_id)
        assert row.download_status == "downloaded", (video_id, row.download_error_kind, row.download_error)
        assert video_file_path(site.data_dir, video_id).read_bytes() == replica.media_path(video_id).read_bytes()
    assert rows.part_files(site.data_dir) == []


def test_transient_faults_are_survived_byte_for_byte(store, site, rows, replica, quick):
    ids = playable_ids(replica, 10)
    seed_rows(store, replica, ids)
    replica.set_faults(
        {"truncated": 0.25, "cdn_html": 0.15, "zero_byte": 0.15, "http_5xx": 0.2, "http_429": 0.1, "slow": 0.1}
    )
    summary = asyncio.run(download_pending(store, site, options=replace(quick, attempts=6), concurrency=4))

    assert summary.downloaded == len(ids), summary.to_dict()
    assert_all_landed(site, rows, replica, ids)
    outcomes = {a.outcome for video_id in ids for a in rows.attempts(video_id)}
    assert outcomes & BODY_KINDS and outcomes & {"http_500", "http_502", "http_503", "http_504", "http_429"}


def test_a_site_throttling_every_file_stops_the_run_and_gives_the_rows_back_untried(store, site, rows, replica, quick):
    """429 Too Many Requests to every try of every file (the refresh's too) failed the whole queue for good,
    as refresh_failed: a throttle of a few minutes took ``--retry-failed`` to undo, and hid its cause."""
    ids = playable_ids(replica, 8)
    seed_rows(store, replica, ids)
    replica.set_faults({"http_429": 1.0})
    options = replace(quick, give_up_after_unanswered=4, use_ytdlp=False)

    with pytest.raises(PersistentlyBlocked, match="429 Too Many Requests to every try of the last 4 files") as stopped:
        asyncio.run(download_pending(store, site, options=options, concurrency=2))

    assert stopped.value.exit_code == 3 and stopped.value.summary["failed"] == 0
    assert {rows.video(i).download_status for i in ids} == {"pending"}
    # Too few to tell a throttle from files of their own: they fail, as what they got.
    few = replace(options, give_up_after_unanswered=len(ids) + 1)
    summary = asyncio.run(download_pending(store, site, options=few, concurrency=2))
    assert dict(summary.failures) == {"http_429": len(ids)}
    replica.set_faults({})
    again = asyncio.run(download_pending(store, site, options=quick, retry_failed=True))
    assert again.downloaded == len(ids)
    assert_all_landed(site, rows, replica, ids)


def test_corrupt_media_is_never_accepted(store, site, rows, replica, quick):
    ids = playable_ids(replica, 3)
    seed_rows(store, replica, ids)
    replica.set_faults({"corrupt_media": 1.0})
    summary = asyncio.run(download_pending(store, site, options=quick))

    assert summary.downloaded == 0 and summary.failed == len(ids)
    for video_id in ids:
        row = rows.video(video_id)
        assert (row.download_status, row.download_error_kind in BODY_KINDS) == ("failed", True)
        assert rows.media(video_id) is None and not video_file_path(site.data_dir, video_id).exists()
    assert rows.part_files(site.data_dir) == []


def test_403_without_cookie_and_expired_urls_refresh_the_item(store, site, rows, replica, quick):
    ids = playable_ids(replica, 4)
    replica.test_clock.offset_s = -7 * 3600  # URLs issued 7 h ago expired an hour ago
    try:
        seed_rows(store, replica, ids[:2])
    finally:
        replica.test_clock.offset_s = 0.0
    seed_rows(store, replica, ids[2:])
    # A chain token for another site: the CDN gets no cookie and answers 403.
    foreign = [{"name": "tt_chain_token", "value": "x", "domain": "elsewhere.example", "path": "/"}]
    summary = asyncio.run(download_pending(store, site, options=quick, cookies=foreign))

    assert summary.downloaded == len(ids)
    assert_all_landed(site, rows, replica, ids)
    assert rows.attempts(ids[2])[0].outcome == "forbidden"
    assert rows.attempts(ids[0])[0].outcome == "ok"  # the expired URL was never requested


def test_a_refresh_under_gnarly_signing_comes_from_the_unsigned_video_page(store, site, rows, replica, quick):
    """The detail API now wants the page's own X-Gnarly, which only a browser page can make; the refresh does
    not need it, because the video page itself (HTML with the item's JSON) is not signed."""
    ids = playable_ids(replica, 1)
    seed_rows(store, replica, ids)
    pages_before = replica.stats.requests["video_page"]
    refused_before = replica.stats.refused_signatures.total()
    foreign = [{"name": "tt_chain_token", "value": "x", "domain": "elsewhere.example", "path": "/"}]
    replica.set_signing("gnarly")
    try:
        summary = asyncio.run(download_pending(store, site, options=quick, cookies=foreign))
    finally:
        replica.set_signing("none")

    assert summary.downloaded == len(ids)
    assert_all_landed(site, rows, replica, ids)
    assert rows.attempts(ids[0])[0].outcome == "forbidden", "the file needed a refresh"
    assert replica.stats.requests["video_page"] > pages_before
    assert replica.stats.refused_signatures.total() == refused_before, "no refresh reached the detail API"


def test_ytdlp_fallback_lands_a_file_that_passes_the_same_checks(store, site, rows, replica, quick):
    ids = playable_ids(replica, 1)
    seed_rows(store, replica, ids)
    with httpx.Client() as real:
        real.get(f"{replica.base_url}/")
        cookies = [{"name": c.name, "value": c.value, "domain": c.domain, "path": c.path} for c in real.cookies.jar]

    # The HTTP path is broken for this run (every answer a 503); yt-dlp reaches the replica on its own.
    broken = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(503)))

    async def go():
        async with broken:
            return await download_pending(
                store, site, client=broken, cookies=cookies, options=replace(quick, use_ytdlp=True, attempts=1)
            )

    summary = asyncio.run(go())
    assert (summary.downloaded, dict(summary.methods)) == (1, {"ytdlp": 1})
    assert_all_landed(site, rows, replica, ids)
    assert [a.method for a in rows.attempts(ids[0])][-1] == "ytdlp"


def _under_another_host_name() -> list[str]:
    """The prefix that runs a command as a container of ``docker compose run --rm`` is: its own host name
    (a UTS namespace; root may make one here, and in CI)."""
    prefix = ["unshare", "--uts", "sh", "-c", 'hostname container-a && exec "$@"', "sh"]
    try:
        made = subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0
    except FileNotFoundError:
        made = False
    if not made:
        pytest.skip("unshare --uts is not permitted here: no process can take another host name")
    return prefix


@pytest.mark.parametrize("host", ["this host", "another host"])
def test_a_download_killed_mid_transfer_is_completed_by_a_rerun(store, site, rows, replica, quick, tmp_path, host):
    """Killed in another container (``docker compose run --rm``: a new host name), its claims were left to
    their 10-minute lease: the rerun said it was done with rows still claimed, and the export lacked them."""
    prefix = _under_another_host_name() if host == "another host" else []
    ids = playable_ids(replica, 6)
    seed_rows(store, replica, ids)
    replica.set_faults({"slow": 1.0})
    env = {
        **os.environ,
        "CORPUS_DATA_DIR": str(site.data_dir),
        "CORPUS_DB_URL": site.db_url,
        "CORPUS_BASE_URL": site.base_url,
    }
    child = subprocess.Popen(
        [*prefix, sys.executable, "-c", "from tiktok_corpus.cli import app; app()", "download", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: bool(rows.part_files(site.data_dir)), "a transfer under way", child)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert any(rows.video(i).download_status == "claimed" for i in ids)
    # Files the child landed before the kill are done; the rerun must finish every other one.
    left = [i for i in ids if rows.video(i).download_status != "downloaded"]

    replica.set_faults({})
    summary = asyncio.run(download_pending(store, site, options=quick))
    assert summary.downloaded + summary.verified == len(left)
    assert_all_landed(site, rows, replica, ids)


def test_the_cli_downloads_and_prints_a_json_summary(store, site, rows, replica):
    from typer.testing import CliRunner

    from tiktok_corpus.cli import app

    ids = playable_ids(replica, 3)
    seed_rows(store, replica, ids)
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(site.data_dir), "download", "--limit", "2", "--json"],
        env={"CORPUS_BASE_URL": site.base_url},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["downloaded"] == 2
    assert sorted(rows.video(i).download_status for i in ids) == ["downloaded", "downloaded", "pending"]


# --- which site `corpus download` goes to, and its exit code --------------------------------------------

DEAD_SITE = "http://127.0.0.1:1"  # nothing listens: a refresh or yt-dlp sent there fails at once


def seed_expired_rows(store, replica, ids: list[str]) -> None:
    """Rows whose URLs all expired (issued 7 h ago): only a refresh from the site can bring their files."""
    replica.test_clock.offset_s = -7 * 3600
    try:
        seed_rows(store, replica, ids)
    finally:
        replica.test_clock.offset_s = 0.0


def record_crawl(store, base_url: str) -> None:
    """A finished crawl run as ``corpus crawl`` records it: its parameters name the site it went to."""
    from tiktok_corpus.store.crawl_runs import end_run, start_run

    end_run(store, start_run(store, {"seeds": 3, "base_url": base_url}), "done", {})


def download_cli(data_dir, *args: str, env: dict | None = None):
    from typer.testing import CliRunner

    from tiktok_corpus.cli import app

    return CliRunner().invoke(app, ["--data-dir", str(data_dir), "download", *args], env=env)


def test_the_cli_refreshes_from_the_site_the_corpus_was_crawled_from(store, site, rows, replica):
    ids = playable_ids(replica, 3)
    seed_expired_rows(store, replica, ids)
    record_crawl(store, replica.base_url)
    pages_before = replica.stats.requests["video_page"]

    result = download_cli(site.data_dir)  # no --base-url, no CORPUS_BASE_URL: the crawl's site

    assert result.exit_code == 0, result.output
    assert f"site: {replica.base_url} (the crawl's)" in result.stderr
    assert result.stdout.startswith(f"downloaded {len(ids)}, already present 0, failed 0")
    assert_all_landed(site, rows, replica, ids)
    assert replica.stats.requests["video_page"] >= pages_before + len(ids), "each refresh read its video page"


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_site_named_beats_the_crawl_s(store, site, rows, replica, how):
    ids = playable_ids(replica, 2)
    seed_expired_rows(store, replica, ids)
    record_crawl(store, DEAD_SITE)  # crawled elsewhere (another replica, since stopped)

    if how == "option":
        result = download_cli(site.data_dir, "--base-url", replica.base_url)
    else:
        result = download_cli(site.data_dir, env={"CORPUS_BASE_URL": replica.base_url})

    assert result.exit_code == 0, result.output
    assert "site:" not in result.stderr
    assert_all_landed(site, rows, replica, ids)


def test_a_run_that_obtains_no_file_exits_1_with_its_summary_and_a_hint(store, site, rows, replica):
    ids = playable_ids(replica, 2)
    seed_expired_rows(store, replica, ids)
    record_crawl(store, replica.base_url)

    result = download_cli(site.data_dir, env={"CORPUS_BASE_URL": DEAD_SITE})  # the environment names another site

    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(f"downloaded 0, already present 0, failed {len(ids)}")
    hint = " ".join(result.stderr.split())
    assert "download_attempts" in hint and "corpus download --retry-failed" in hint
    assert f"this run went to {DEAD_SITE}, the corpus was crawled from {replica.base_url}" in hint
    assert {rows.video(i).download_status for i in ids} == {"failed"}
    messages = [a.message or "" for i in ids for a in rows.attempts(i)]
    assert not any("tiktok.com" in message for message in messages), messages

    again = download_cli(site.data_dir, "--retry-failed", "--json")  # the crawl's site: every file comes
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["downloaded"] == len(ids)
    assert_all_landed(site, rows, replica, ids)


def test_a_run_that_obtains_some_files_exits_0_and_one_with_nothing_to_do_too(store, site, rows, replica):
    ids = playable_ids(replica, 2)
    seed_rows(store, replica, ids)
    rows.add("1" * 19, [{"kind": "playAddr", "url": f"{replica.base_url}/gone.mp4"}])  # not on the site: deleted
    record_crawl(store, replica.base_url)

    result = download_cli(site.data_dir, "--json")

    assert result.exit_code == 0, result.output
    assert (json.loads(result.stdout)["downloaded"], json.loads(result.stdout)["failed"]) == (2, 1)
    nothing = download_cli(site.data_dir)
    assert nothing.exit_code == 0, nothing.output
    assert nothing.stdout.startswith("downloaded 0, already present 0, failed 0")


def test_the_cli_downloads_through_the_proxy_given(store, site, rows, replica, forwarding_proxy):
    ids = playable_ids(replica, 2)
    seed_expired_rows(store, replica, ids)

    result = download_cli(site.data_dir, "--base-url", replica.base_url, "--proxy", forwarding_proxy.base_url, "--json")

    assert result.exit_code == 0, result.output
    assert_all_landed(site, rows, replica, ids)
    forwarded = [urlsplit(url) for url in forwarding_proxy.forwarded]
    assert {url.netloc for url in forwarded} == {urlsplit(replica.base_url).netloc}
    assert any(url.path.startswith("/@") for url in forwarded), "the refreshes went through it too"
