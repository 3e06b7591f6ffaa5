"""The replica's site clock: engagement that grows with age, one clock reading per answer, and posts
taken down while serving. Clocks are injected: nothing here waits for time to pass."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
from dataclasses import asdict, astuple

import httpx
import pytest

from tiktok_corpus.clock import ScaledClock
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.replica import Replica, ReplicaConfig, build_catalog
from tiktok_corpus.replica.catalog import tiktok_rounded
from tiktok_corpus.replica.growth import HOUR, RECENT_PAST_S, TAU_MAX_S, TAU_MIN_S
from tiktok_corpus.replica.items import ItemRenderer, MediaUrls
from tiktok_corpus.replica.signing import keyed_hash, signed_text
from tiktok_corpus.tiktok.contract import parse_item
from tiktok_corpus.tiktok.contract.urls import detail_api_path, recommend_api_path, related_api_path

ORIGIN = 1_790_000_000.0
DAY, YEAR = 86_400, 365 * 86_400
PAGE_SIGNING = re.compile(r"const SIGNING = (\{.*?\});")
PAGE_JSON = re.compile(r'<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">(.*?)</script>')
CORPUS = [sys.executable, "-c", "from tiktok_corpus.cli import app; app()"]
# The static catalog (300 posts, seed 0) and its rendered items, digested before the site clock existed:
# time_scale None must keep serving exactly these.
STATIC_CATALOG_SHA256 = "cc9e9bd8acab302740434cc41bba3c75438d46aa7249432cc45933af38804126"
STATIC_ITEMS_SHA256 = "aa9f51ca7a3efb2818b64a0881f63f4545a9c5b246ab24598bdb8bae71992297"


@pytest.fixture
def growing():
    """A growing 40-post site (a week per minute) whose site clock the test sets in ``now[0]``; no media."""
    now = [ORIGIN]
    config = ReplicaConfig(videos=40, media=False, time_scale=10080, time_origin=ORIGIN)
    with Replica(config, site_clock=lambda: now[0]) as rep, httpx.Client(base_url=rep.base_url, timeout=10) as http:
        http.get("/foryou")  # the session cookies
        yield rep, http, now


def _counts(item: dict) -> tuple[int, ...]:
    """The exact counts a crawler reads from an item (statsV2 when present)."""
    stats = parse_item(item).stats
    assert stats is not None
    return stats.play_count, stats.like_count, stats.comment_count, stats.share_count, stats.collect_count


def _page_item(http: httpx.Client, video_id: str) -> dict:
    page = http.get(f"/@_/video/{video_id}")
    return json.loads(PAGE_JSON.search(page.text).group(1))["__DEFAULT_SCOPE__"]["webapp.video-detail"]


def test_scaled_clocks_with_the_same_origin_and_scale_agree():
    wall = [ORIGIN]
    first, second = ScaledClock(ORIGIN, 10080, wall=lambda: wall[0]), ScaledClock(ORIGIN, 10080, wall=lambda: wall[0])
    assert first() == second() == ORIGIN
    wall[0] += 60
    assert first() == second() == ORIGIN + 7 * DAY  # a week per minute
    with pytest.raises(ValueError):
        ScaledClock(ORIGIN, 0)


def test_time_scale_none_keeps_the_static_catalog_and_items():
    catalog = Replica(ReplicaConfig(media=False)).catalog
    rows = [[v.id, v.kind, v.create_time, asdict(v.stats)] for v in catalog.videos]
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest() == STATIC_CATALOG_SHA256
    renderer = ItemRenderer(catalog, MediaUrls("http://replica", b"0" * 16), {}, ORIGIN + YEAR)
    items = [renderer.item(v, 1_800_000_000) for v in catalog.videos]
    assert hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest() == STATIC_ITEMS_SHA256
    assert all(catalog.stats_at(v.id, 0.0) == v.stats for v in catalog.videos)


def test_a_static_site_serves_final_counts_and_its_site_clock_in_extra_now():
    now = [ORIGIN]
    config = ReplicaConfig(videos=40, media=False)
    with Replica(config, site_clock=lambda: now[0]) as rep, httpx.Client(base_url=rep.base_url, timeout=10) as http:
        video = next(v for v in rep.catalog.videos if v.kind == "video" and v.has_stats_v2)
        for now[0] in (ORIGIN, ORIGIN + YEAR):
            body = http.get(detail_api_path(video.id)).json()
            assert _counts(body["itemInfo"]["itemStruct"]) == astuple(video.stats)
            assert body["extra"]["now"] == int(now[0] * 1000)


def test_growing_posts_were_posted_in_the_recent_past_under_the_same_ids():
    static, grown = build_catalog(300, 0), build_catalog(300, 0, growth_origin=ORIGIN)
    assert [v.id for v in grown.videos] == [v.id for v in static.videos]
    assert [v.stats for v in grown.videos] == [v.stats for v in static.videos]  # the final levels
    assert grown.videos == build_catalog(300, 0, growth_origin=ORIGIN).videos  # deterministic
    ages = [ORIGIN - v.create_time for v in grown.videos]
    assert all(0 <= age <= RECENT_PAST_S + 1 for age in ages)
    assert sum(age < HOUR for age in ages) > 30, "a good share is under an hour old: every mark lies ahead"
    assert all(v.growth is not None and TAU_MIN_S <= v.growth.tau_s <= TAU_MAX_S for v in grown.videos)


def test_counts_grow_from_zero_never_decrease_and_saturate_at_the_static_level():
    grown = build_catalog(300, 0, growth_origin=ORIGIN)
    below_final_at_origin = 0
    for video in grown.videos:
        posted = video.create_time
        moments = [posted - 1, posted, posted + 60, posted + HOUR, posted + 6 * HOUR, posted + DAY, posted + 3 * DAY]
        series = [astuple(video.stats_at(t)) for t in [*moments, posted + 7 * DAY, posted + YEAR]]
        assert series[0] == series[1] == (0, 0, 0, 0, 0)
        assert all(a <= b for earlier, later in zip(series, series[1:]) for a, b in zip(earlier, later, strict=True))
        assert series[-1] == astuple(video.stats)
        assert all(isinstance(count, int) for count in series[3])
        below_final_at_origin += video.stats_at(ORIGIN).plays < video.stats.plays
    assert below_final_at_origin > 250, "most posts are still growing at the origin"


def test_one_site_time_gives_the_same_counts_in_detail_related_page_and_feed(growing):
    rep, http, now = growing
    catalog = rep.catalog
    source, video = next(
        (s, catalog.by_id[r])
        for s in catalog.videos
        if s.kind == "video"
        for r in s.related
        if catalog.by_id[r].kind == "video" and catalog.by_id[r].has_stats_v2
    )
    now[0] = ORIGIN + 5 * HOUR
    expected = astuple(catalog.stats_at(video.id, now[0]))
    assert 0 < expected[0] < video.stats.plays, "mid-growth"

    detail = http.get(detail_api_path(video.id)).json()
    assert _counts(detail["itemInfo"]["itemStruct"]) == expected
    assert detail["extra"]["now"] == int(now[0] * 1000)
    related = http.get(related_api_path(source.id, 24)).json()
    assert related["extra"]["now"] == int(now[0] * 1000)
    assert [_counts(item) for item in related["itemList"] if item["id"] == video.id] == [expected]
    page = _page_item(http, video.id)
    assert _counts(page["itemInfo"]["itemStruct"]) == expected
    feed = http.get(recommend_api_path(30)).json()
    assert feed["extra"]["now"] == int(now[0] * 1000)
    for item in feed["itemList"]:
        exact = catalog.stats_at(item["id"], now[0])
        assert item["stats"]["playCount"] == tiktok_rounded(exact.plays)
        assert item.get("statsV2", {"playCount": str(exact.plays)})["playCount"] == str(exact.plays)
        assert int(item["createTime"]) == catalog.by_id[item["id"]].create_time


def test_counts_grow_between_answers_up_to_the_static_level(growing):
    rep, http, now = growing
    video = next(v for v in rep.catalog.videos if v.kind == "video" and v.create_time > ORIGIN - HOUR)
    plays = []
    for now[0] in (ORIGIN, ORIGIN + HOUR, ORIGIN + DAY, ORIGIN + 7 * DAY, ORIGIN + YEAR):
        plays.append(_counts(http.get(detail_api_path(video.id)).json()["itemInfo"]["itemStruct"])[0])
    assert plays == sorted(plays) and plays[0] < plays[2]
    assert plays[-1] == video.stats.plays


def test_the_default_site_clock_scales_the_wall_clock():
    wall = [ORIGIN]
    config = ReplicaConfig(videos=40, media=False, time_scale=10080)
    with Replica(config, clock=lambda: wall[0]) as rep, httpx.Client(base_url=rep.base_url, timeout=10) as http:
        assert rep.time_origin == ORIGIN  # when it started, on its clock
        video = next(v for v in rep.catalog.videos if v.kind == "video")
        wall[0] += 60  # a minute of wall time: a week of site time
        body = http.get(detail_api_path(video.id)).json()
        assert body["extra"]["now"] == int((ORIGIN + 7 * DAY) * 1000)
        assert _counts(body["itemInfo"]["itemStruct"])[0] == rep.catalog.stats_at(video.id, ORIGIN + 7 * DAY).plays


def test_signatures_stay_on_wall_time_while_the_site_clock_runs_fast():
    """A page's ts and the freshness check follow ``clock``: a fast site clock must not stale signatures."""
    wall, site = [ORIGIN], [ORIGIN + 30 * DAY]
    config = ReplicaConfig(videos=40, media=False, signing="gnarly", time_scale=10080)
    with (
        Replica(config, clock=lambda: wall[0], site_clock=lambda: site[0]) as rep,
        httpx.Client(base_url=rep.base_url, timeout=10) as http,
    ):
        video = next(v for v in rep.catalog.videos if v.kind == "video")
        signing = json.loads(PAGE_SIGNING.search(http.get(f"/@_/video/{video.id}").text).group(1))
        assert signing["now"] == int(ORIGIN)
        query = f"aid=1988&count=16&itemID={video.id}&from_page=video&ts={signing['now']}"
        signed = f"/api/related/item_list/?{query}&X-Gnarly={keyed_hash(signing['gnarly'], signed_text(query))}"
        answer = http.get(signed).json()
        assert answer["itemList"] and answer["extra"]["now"] == int(site[0] * 1000)
        wall[0] += 61
        assert http.get(signed).content == b""  # stale after 61 s of wall time, whatever the site clock says


def test_site_clock_options_are_checked():
    with pytest.raises(ConfigError, match="--time-origin needs --time-scale"):
        Replica(ReplicaConfig(videos=20, media=False, time_origin=ORIGIN))
    with pytest.raises(ConfigError, match="positive"):
        Replica(ReplicaConfig(videos=20, media=False, time_scale=0))


def test_remove_makes_the_detail_api_and_the_page_answer_its_status(growing):
    rep, http, _ = growing
    deleted, private, kept = [v for v in rep.catalog.videos if v.kind == "video"][:3]
    rep.remove(deleted.id)
    answer = http.post("/__replica__/remove", params={"id": private.id, "status": "10216"})
    assert answer.json() == {"removed": private.id, "statusCode": 10216}
    for video, status in ((deleted, 10204), (private, 10216)):
        assert http.get(detail_api_path(video.id)).json()["statusCode"] == status
        assert _page_item(http, video.id)["statusCode"] == status
        assert http.get(related_api_path(video.id)).json()["statusCode"] == 10204
    assert http.get(detail_api_path(kept.id)).json()["statusCode"] == 0
    assert http.post("/__replica__/remove", params={"id": "1"}).status_code == 400
    assert http.post("/__replica__/remove", data={"id": kept.id, "status": "404"}).status_code == 400
    with pytest.raises(ConfigError, match="10204"):
        rep.remove(kept.id, 200)
    assert http.get(detail_api_path(kept.id)).json()["statusCode"] == 0


def test_serve_with_a_time_scale_names_the_site_clock_on_stderr():
    command = [*CORPUS, "replica", "serve", "--videos", "30", "--no-media", "--time-scale", "10080"]
    server = subprocess.Popen(
        [*command, "--time-origin", "1790000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        base_url = server.stdout.readline().strip()
        with httpx.Client(base_url=base_url, timeout=10) as http:
            item = http.get(recommend_api_path(30)).json()["itemList"][0]
            assert ORIGIN - RECENT_PAST_S <= int(item["createTime"]) <= ORIGIN
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert "site clock: origin 1790000000.0, scale 10080 (a week per minute)\n" in server.stderr.read()
