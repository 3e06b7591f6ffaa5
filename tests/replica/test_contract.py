"""The replica's web contract over real HTTP: envelopes, status codes, cookies, Range, expiry."""

from __future__ import annotations

import json
import re

import httpx
import pytest

PAGE_JSON = re.compile(r'<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">(.*?)</script>')


@pytest.fixture
def client(replica):
    """A client that loaded the For You page first, so it holds the page's cookies."""
    with httpx.Client(base_url=replica.base_url, timeout=10) as http:
        assert http.get("/foryou").status_code == 200
        yield http


def first(replica, kind):
    return next(v for v in replica.catalog.videos if v.kind == kind)


def detail(client, video_id):
    return client.get("/api/item/detail/", params={"itemId": video_id}).json()


def test_pages_set_host_only_cookies_and_embed_the_app_context(replica):
    response = httpx.get(f"{replica.base_url}/foryou")
    assert response.status_code == 200
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("tt_chain_token=") for c in cookies)
    assert not any("domain=" in c.lower() for c in cookies)
    scope = json.loads(PAGE_JSON.search(response.text).group(1))["__DEFAULT_SCOPE__"]
    assert scope["webapp.app-context"]["language"] == "en"
    assert "/api/recommend/item_list/" in response.text


def test_recommend_envelope_gives_overlapping_random_batches(client, replica):
    batches = []
    for _ in range(6):
        body = client.get(
            "/api/recommend/item_list/",
            params={"count": 30, "from_page": "fyp", "aid": 1988, "msToken": "x", "X-Bogus": "y"},
        ).json()
        assert {"statusCode", "status_code", "status_msg", "itemList", "hasMore", "cursor", "extra", "log_pb"} <= set(
            body
        )
        assert body["statusCode"] == 0 and 18 <= len(body["itemList"]) <= 30
        batches.append([item["id"] for item in body["itemList"]])
    assert all(item_id in replica.catalog.by_id for batch in batches for item_id in batch)
    assert batches[0] != batches[1]
    overlaps = sum(len(set(a) & set(b)) for a, b in zip(batches, batches[1:]))
    assert overlaps > 0
    assert client.get("/api/recommend/item_list/", params={"count": 51}).json()["statusCode"] == 10201
    assert client.get("/api/recommend/item_list/", params={"count": "²"}).json()["statusCode"] == 10201  # not a 500
    huge = "9" * 5000  # past int()'s 4300 digits: a 500 before
    assert client.get("/api/recommend/item_list/", params={"count": huge}).json()["statusCode"] == 10201


def test_each_session_gets_the_same_feed_sequence_however_sessions_interleave(replica):
    def feed_ids(http):
        return [item["id"] for item in http.get("/api/recommend/item_list/", params={"count": 30}).json()["itemList"]]

    with (
        httpx.Client(base_url=replica.base_url, timeout=10) as first_visitor,
        httpx.Client(base_url=replica.base_url, timeout=10) as second_visitor,
    ):
        for http in (first_visitor, second_visitor):
            assert http.get("/foryou").status_code == 200
        assert first_visitor.cookies["ttwid"] != second_visitor.cookies["ttwid"]
        first_pages = [feed_ids(first_visitor) for _ in range(3)]
        second_pages = [feed_ids(second_visitor)]
        first_pages.append(feed_ids(first_visitor))  # the other session's call did not move this one on
        second_pages += [feed_ids(second_visitor) for _ in range(3)]
    assert first_pages == second_pages
    assert len({tuple(page) for page in first_pages}) == 4


def test_related_lists_follow_the_graph(client, replica):
    video = first(replica, "video")
    body = client.get("/api/related/item_list/", params={"itemID": video.id, "count": 16}).json()
    assert [item["id"] for item in body["itemList"]] == video.related[:16]
    assert client.get("/api/related/item_list/", params={"itemID": "123"}).json()["statusCode"] == 10204
    assert client.get("/api/related/item_list/").json()["statusCode"] == 10201


def test_item_detail_shapes_and_status_codes(client, replica):
    video = next(v for v in replica.catalog.videos if v.kind == "video" and v.has_stats_v2 and v.stats.plays >= 10_000)
    body = detail(client, video.id)
    assert body["statusCode"] == 0 and set(body) >= {"itemInfo", "shareMeta", "status_code", "status_msg"}
    item = body["itemInfo"]["itemStruct"]
    assert item["id"] == video.id and item["author"]["uniqueId"] == video.author
    assert item["statsV2"]["playCount"] == str(video.stats.plays)
    assert item["stats"]["playCount"] != video.stats.plays and item["stats"]["playCount"] % 100 == 0
    assert {"penaltyContext", "creatorAIComment", "item_control", "textExtra"} <= set(item)
    gear = item["video"]["bitrateInfo"][0]
    assert gear["PlayAddr"]["DataSize"] == replica.media_path(video.id).stat().st_size
    assert item["video"]["playAddr"] == gear["PlayAddr"]["UrlList"][0]
    assert detail(client, first(replica, "deleted").id) == {
        "statusCode": 10204,
        "status_code": 0,
        "status_msg": "",  # as the real capture (item_detail_missing.json): the API says no more
    }
    assert detail(client, first(replica, "private").id)["statusCode"] == 10216
    assert detail(client, "7000000000000000000")["statusCode"] == 10204
    photo = detail(client, first(replica, "photo").id)["itemInfo"]["itemStruct"]
    assert photo["imagePost"]["images"] and "playAddr" not in photo["video"]
    assert detail(client, first(replica, "ad").id)["itemInfo"]["itemStruct"]["isAd"] is True
    without_v2 = next(v for v in replica.catalog.videos if v.kind == "video" and not v.has_stats_v2)
    assert "statsV2" not in detail(client, without_v2.id)["itemInfo"]["itemStruct"]


def test_video_page_rehydration_and_status(client, replica):
    video = first(replica, "video")
    page = client.get(f"/@anyone/video/{video.id}")
    scope = json.loads(PAGE_JSON.search(page.text).group(1))["__DEFAULT_SCOPE__"]
    assert scope["webapp.video-detail"]["itemInfo"]["itemStruct"]["id"] == video.id
    assert "/api/related/item_list/" in page.text
    deleted = client.get(f"/@_/video/{first(replica, 'deleted').id}")
    assert (
        json.loads(PAGE_JSON.search(deleted.text).group(1))["__DEFAULT_SCOPE__"]["webapp.video-detail"]["statusCode"]
        == 10204
    )


def test_cdn_enforces_cookie_serves_exact_bytes_and_ranges(client, replica):
    video = first(replica, "video")
    url = detail(client, video.id)["itemInfo"]["itemStruct"]["video"]["playAddr"]
    expected = replica.media_path(video.id).read_bytes()
    denied = httpx.get(url)
    assert denied.status_code == 403 and "Access Denied" in denied.text
    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == expected
    assert int(whole.headers["content-length"]) == len(expected) and whole.content[4:8] == b"ftyp"
    part = client.get(url, headers={"Range": "bytes=1000-"})
    assert part.status_code == 206 and part.content == expected[1000:]
    assert part.headers["content-range"] == f"bytes 1000-{len(expected) - 1}/{len(expected)}"
    assert client.get(url, headers={"Range": f"bytes={len(expected)}-"}).status_code == 416
    for ignored in ("bytes=5-3", f"bytes={'9' * 5000}-"):  # invalid (RFC 9110): the whole file, as no Range
        answer = client.get(url, headers={"Range": ignored})
        assert answer.status_code == 200 and answer.content == expected, ignored
    assert client.get(re.sub(r"expire=(\d+)", "expire=" + "9" * 5000, url)).status_code == 403
    tampered = re.sub(r"expire=(\d+)", lambda m: f"expire={int(m.group(1)) + 1}", url)
    assert client.get(tampered).status_code == 403
    assert client.get(re.sub(r"expire=(\d+)", "expire=%C2%B2", url)).status_code == 403  # a digit to isdigit only
    play_api = detail(client, video.id)["itemInfo"]["itemStruct"]["video"]["bitrateInfo"][0]["PlayAddr"]["UrlList"][-1]
    assert "/aweme/v1/play/" in play_api and len(client.get(play_api).content) < 1000


def test_cdn_refuses_urls_past_their_expire(make_replica):
    now = [1_800_000_000.0]
    rep = make_replica(videos=30, url_ttl_s=3600, clock=lambda: now[0])
    video = next(v for v in rep.catalog.videos if v.playable)
    with httpx.Client(base_url=rep.base_url) as http:
        http.get("/foryou")
        url = http.get("/api/item/detail/", params={"itemId": video.id}).json()["itemInfo"]["itemStruct"]["video"][
            "playAddr"
        ]
        assert http.get(url).status_code == 200
        now[0] += 3601
        assert http.get(url).status_code == 403
        fresh = http.get("/api/item/detail/", params={"itemId": video.id}).json()["itemInfo"]["itemStruct"]["video"][
            "playAddr"
        ]
        assert http.get(fresh).status_code == 200
