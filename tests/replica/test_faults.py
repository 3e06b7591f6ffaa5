"""Each fault fires at its rate, does what the real site does, and is deterministic for a seed."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tiktok_corpus.errors import ConfigError
from tiktok_corpus.replica.faults import FAULTS, FaultPlan, parse_fault_options
from tiktok_corpus.replica.pages import waf_answer


@pytest.fixture
def client(replica):
    with httpx.Client(base_url=replica.base_url, timeout=10) as http:
        http.get("/foryou")
        yield http


def playable(replica):
    return next(v for v in replica.catalog.videos if v.kind == "video")


def recommend(http):
    return http.get("/api/recommend/item_list/", params={"count": 16})


def media_url(http, video_id):
    return http.get("/api/item/detail/", params={"itemId": video_id}).json()["itemInfo"]["itemStruct"]["video"][
        "playAddr"
    ]


def test_rates_hold_and_the_sequence_is_deterministic_per_seed():
    def draws(seed):
        plan = FaultPlan(seed, {"http_5xx": 0.3, "slow": 0.5})
        return [plan.fires("http_5xx") for _ in range(1000)]

    assert draws(7) == draws(7) != draws(8)
    assert 250 < sum(draws(7)) < 350
    plan = FaultPlan(0, {"captcha": 1.0})
    assert all(plan.fires("captcha") for _ in range(50)) and not plan.fires("waf")
    assert plan.snapshot().faults["captcha"] == 50


def test_bad_fault_options_are_clear_errors():
    assert parse_fault_options(["empty_body=0.25"]) == {"empty_body": 0.25}
    for bad in (["nope=0.1"], ["slow=2"], ["slow"]):
        with pytest.raises(ConfigError):
            parse_fault_options(bad)
    assert set(FAULTS) >= {
        "waf",
        "empty_body",
        "empty_first",
        "captcha",
        "http_429",
        "http_5xx",
        "slow",
        "truncated",
        "cdn_html",
        "zero_byte",
        "corrupt_media",
        "expired_urls",
        "no_rehydration",
    }


def test_empty_body_at_a_rate_on_the_server(client, replica):
    fired_before = replica.stats.faults["empty_body"]  # the replica is shared: other tests fired it too
    replica.set_faults({"empty_body": 0.5})
    bodies = [recommend(client) for _ in range(60)]
    empty = [r for r in bodies if r.status_code == 200 and r.content == b""]
    assert 15 < len(empty) < 45 and empty[0].headers["tt_orcas_res"] == "1"
    assert replica.stats.faults["empty_body"] - fired_before == len(empty)


def test_same_seed_same_faults_for_the_same_requests(make_replica):
    def sequence():
        rep = make_replica(videos=30, seed=5, faults={"empty_body": 0.5})
        with httpx.Client(base_url=rep.base_url) as http:
            return [recommend(http).content == b"" for _ in range(30)]

    assert sequence() == sequence()


def test_turning_one_knob_on_never_shifts_when_another_fires(make_replica):
    """A request answered 429 skips the 5xx draw: drawn in sequence, every later request's 5xx moved."""

    def statuses(faults):
        rep = make_replica(videos=30, seed=0, faults=faults)
        with httpx.Client(base_url=rep.base_url) as http:
            http.get("/foryou")  # (a 5xx page still sets no cookie: the API answers alike without one)
            return [recommend(http).status_code for _ in range(60)]

    alone = statuses({"http_5xx": 0.3})
    both = statuses({"http_5xx": 0.3, "http_429": 0.3})
    assert 429 in both and any(code >= 500 for code in alone)
    assert [code >= 500 for code, with_429 in zip(alone, both) if with_429 != 429] == [
        with_429 >= 500 for with_429 in both if with_429 != 429
    ]


def test_a_list_without_item_list_is_a_bot_answer(client, replica):
    """The contract's second blocked answer: statusCode 0, and no itemList."""
    replica.set_faults({"no_item_list": 1.0})
    related = client.get("/api/related/item_list/", params={"itemID": playable(replica).id, "count": 16}).json()
    assert recommend(client).json() == related == {"statusCode": 0, "status_code": 0, "status_msg": ""}


def test_empty_first_call_of_each_new_session(replica):
    replica.set_faults({"empty_first": 1.0})
    for _ in range(2):
        with httpx.Client(base_url=replica.base_url) as http:
            http.get("/foryou")
            assert recommend(http).content == b""
            assert recommend(http).json()["statusCode"] == 0


def test_captcha_429_5xx_and_slow(client, replica, monkeypatch):
    replica.set_faults({"captcha": 1.0})
    assert recommend(client).json()["type"] == "verify"
    replica.set_faults({"http_429": 1.0})
    assert recommend(client).status_code == 429
    replica.set_faults({"http_5xx": 1.0})
    assert client.get("/foryou").status_code in (500, 502, 503, 504)
    replica.set_faults({"slow": 1.0})
    monkeypatch.setattr(replica.config, "slow_seconds", 0.05)  # the shared replica gets its own value back
    slowed = replica.stats.faults.get("slow", 0)
    assert recommend(client).status_code == 200  # held back, then served
    assert replica.stats.faults["slow"] == slowed + 1


def test_waf_interstitial_then_the_real_page_for_the_answer(replica):
    replica.set_faults({"waf": 1.0})
    with httpx.Client(base_url=replica.base_url) as http:
        wall = http.get("/foryou")
        assert 'id="wci" class="_wafchallengeid"' in wall.text and "__UNIVERSAL" not in wall.text
        challenge = wall.text.split('class="_wafchallengeid">')[1].split("<")[0]
        http.cookies.set("_wafchallengeid", f"{challenge}.{waf_answer(challenge)}")
        assert "__UNIVERSAL_DATA_FOR_REHYDRATION__" in http.get("/foryou").text
        assert "_wafchallengeid" in http.get("/foryou").text  # an answer only works once


def test_no_rehydration_page(client, replica):
    replica.set_faults({"no_rehydration": 1.0})
    page = client.get(f"/@_/video/{playable(replica).id}")
    assert page.status_code == 200 and "__UNIVERSAL_DATA_FOR_REHYDRATION__" not in page.text


def test_cdn_faults(client, replica, tmp_path):
    video = playable(replica)
    url = media_url(client, video.id)
    real = replica.media_path(video.id).read_bytes()
    replica.set_faults({"cdn_html": 1.0})
    html = client.get(url)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    replica.set_faults({"zero_byte": 1.0})
    assert client.get(url).content == b""
    replica.set_faults({"truncated": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(url)
    replica.set_faults({"corrupt_media": 1.0})
    corrupt = client.get(url).content
    assert len(corrupt) == len(real) and corrupt[4:8] == b"ftyp" and corrupt != real
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(corrupt)
    assert subprocess.run(["ffprobe", "-v", "error", str(path)], capture_output=True).returncode != 0
    replica.set_faults({})
    assert client.get(url).content == real


def test_expired_urls_in_lists_while_detail_is_fresh(client, replica):
    replica.set_faults({"expired_urls": 1.0})
    items = recommend(client).json()["itemList"]
    listed = next(item for item in items if item["video"].get("playAddr"))
    assert client.get(listed["video"]["playAddr"]).status_code == 403
    assert client.get(media_url(client, listed["id"])).status_code == 200
