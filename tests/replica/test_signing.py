"""Request signing (issue #14): the replica refuses what the real site refuses, and its pages still sign.

Browser tests run real Chromium against a replica of their own (metadata only, so it starts at once);
the shared replica keeps mode ``none``.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from tiktok_corpus.config import Settings
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.replica import Replica, ReplicaConfig
from tiktok_corpus.replica.signing import SIGNING_JS, SigningKeys, keyed_hash, signed_text

ARTICLES = 'article[data-e2e="recommend-list-item-container"]'
# An in-page fetch like the crawler's: same origin, the session's cookies, never the HTTP cache.
FETCH_JS = """async (url) => {
  const response = await fetch(url, {credentials: 'include', cache: 'no-store'});
  return {status: response.status, body: await response.text(), orcas: response.headers.get('tt_orcas_res')};
}"""
FRONTIER_SIGN_JS = "(url) => window.byted_acrawler.frontierSign(url)['X-Bogus']"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=Settings().resolved_browser_path())
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


def site(make_replica, signing: str, clock=None) -> Replica:
    return make_replica(videos=40, media=False, signing=signing, clock=clock)


def a_video(rep: Replica) -> str:
    return next(v.id for v in rep.catalog.videos if v.kind == "video")


def related_path(video_id: str) -> str:
    return f"/api/related/item_list/?aid=1988&count=16&itemID={video_id}&from_page=video&msToken=abc"


def open_video_page(page: Page, rep: Replica, video_id: str):
    """Open the video page; return the related-list response the page requested itself."""
    with page.expect_response(lambda r: "/api/related/item_list/" in r.url) as related:
        page.goto(f"{rep.base_url}/@_/video/{video_id}")
    return related.value


def in_page_fetch(page: Page, url: str) -> dict:
    return page.evaluate(FETCH_JS, url)


def refused(answer: dict) -> bool:
    return answer["status"] == 200 and answer["body"] == "" and answer["orcas"] == "1"


def item_ids(answer: dict) -> list[str]:
    return [item["id"] for item in json.loads(answer["body"])["itemList"]]


# --- the scheme, in Python ----------------------------------------------------------------------


def test_signed_text_drops_only_the_signatures_and_keeps_the_order():
    assert signed_text("b=2&X-Bogus=ff&a=1&X-Gnarly=ee&ts=5") == "b=2&a=1&ts=5"
    assert signed_text("X-Bogus=ff") == ""
    assert signed_text("") == ""
    assert signed_text("a=1&&X-Bogusx=1&x-bogus=2") == "a=1&&X-Bogusx=1&x-bogus=2"  # exact names only


def test_refusal_reasons_per_mode():
    keys = SigningKeys.draw()
    now = 1_800_000_000
    base = "aid=1988&itemID=1"
    with_ts = f"{base}&ts={now}"
    xbogus = keyed_hash(keys.xbogus, base)
    gnarly = keyed_hash(keys.gnarly, with_ts)
    assert keys.refusal("none", "", now) is None
    assert keys.refusal("xbogus", base, now) == "missing X-Bogus"
    assert keys.refusal("xbogus", f"{base}&X-Bogus=0000000000000000", now) == "wrong X-Bogus"
    assert keys.refusal("xbogus", f"{base}&X-Bogus={xbogus}", now) is None
    assert keys.refusal("xbogus", f"aid=1988&X-Bogus={xbogus}&itemID=1", now) is None  # wherever it sits
    assert keys.refusal("xbogus", f"{base}&X-Bogus={xbogus}&count=16", now) == "wrong X-Bogus"  # covers all
    assert keys.refusal("gnarly", f"{base}&X-Bogus={xbogus}", now) == "missing ts"
    assert keys.refusal("gnarly", f"{with_ts}&X-Bogus={xbogus}", now) == "missing X-Gnarly"
    assert keys.refusal("gnarly", f"{with_ts}&X-Gnarly={xbogus}", now) == "wrong X-Gnarly"
    assert keys.refusal("gnarly", f"{with_ts}&X-Gnarly={gnarly}", now) is None
    assert keys.refusal("gnarly", f"{with_ts}&X-Gnarly={gnarly}", now + 60) is None
    assert keys.refusal("gnarly", f"{with_ts}&X-Gnarly={gnarly}", now + 61) == "stale ts"
    assert keys.refusal("gnarly", f"{with_ts}&X-Gnarly={gnarly}", now - 61) == "stale ts"  # from the future
    assert keys.refusal("gnarly", f"{base}&ts=soon&X-Gnarly={gnarly}", now) == "stale ts"
    assert SigningKeys.draw() != keys


def test_an_unknown_mode_is_a_clear_error(make_replica):
    with pytest.raises(ConfigError, match="unknown signing mode 'bogus'; known: none, xbogus, gnarly"):
        Replica(ReplicaConfig(signing="bogus"))
    rep = site(make_replica, "none")
    with pytest.raises(ConfigError, match="unknown signing mode"):
        rep.set_signing("X-Gnarly")
    assert rep.signing == "none"


# --- the pages' JS against the Python ---------------------------------------------------------------


@pytest.mark.browser
def test_python_and_js_compute_the_same_hash_and_signed_text(page, make_replica):
    rep = site(make_replica, "none")
    page.goto(f"{rep.base_url}/foryou")
    rng = random.Random(14)
    alphabet = "az09-_.~&=%+ éß日本語😀\n\t\"'\\<>"
    texts = ["", "a", "X-Bogus=1", "x" * 5000] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300))) for _ in range(300)
    ]
    cases = [[secrets.token_hex(rng.randint(0, 32)), text] for text in texts]
    in_js = page.evaluate(f"(cases) => {{ {SIGNING_JS}; return cases.map(([k, t]) => keyedHash(k, t)); }}", cases)
    assert in_js == [keyed_hash(key, text) for key, text in cases]

    queries = ["", "a=1", "a=1&X-Bogus=ff&b=2", "X-Gnarly=1&ts=5&X-Bogus=2", "a=1&&b=%20+c&X-Bogus", "q=%E6%97%A5"]
    urls = [f"/api/x?{q}" for q in queries] + [f"{rep.base_url}/api/y?{q}#frag" for q in queries]
    js_texts = page.evaluate(f"(urls) => {{ {SIGNING_JS}; return urls.map(signedText); }}", urls)
    assert js_texts == [signed_text(q) for q in queries] * 2


# --- the modes, through real pages ------------------------------------------------------------------


@pytest.mark.browser
def test_none_answers_a_plain_in_page_fetch(page, make_replica):
    rep = site(make_replica, "none")
    video_id = a_video(rep)
    open_video_page(page, rep, video_id)
    assert page.evaluate("typeof window.byted_acrawler.frontierSign") == "function"  # in every mode
    assert item_ids(in_page_fetch(page, related_path(video_id))) == rep.catalog.by_id[video_id].related[:16]
    assert rep.stats.refused_signatures == {}


@pytest.mark.browser
def test_xbogus_refuses_a_plain_fetch_and_answers_a_frontier_signed_one(page, make_replica):
    rep = site(make_replica, "xbogus")
    video_id = a_video(rep)
    own = open_video_page(page, rep, video_id)
    expected = rep.catalog.by_id[video_id].related[:16]
    assert [item["id"] for item in own.json()["itemList"]] == expected  # the page signs its own call

    assert refused(in_page_fetch(page, related_path(video_id)))
    url = related_path(video_id)
    signed = f"{url}&X-Bogus={page.evaluate(FRONTIER_SIGN_JS, url)}"
    assert item_ids(in_page_fetch(page, signed)) == expected
    absolute = f"{rep.base_url}{url}"  # frontierSign takes absolute URLs too
    assert item_ids(in_page_fetch(page, f"{absolute}&X-Bogus={page.evaluate(FRONTIER_SIGN_JS, absolute)}"))
    assert refused(in_page_fetch(page, signed.replace("count=16", "count=15")))  # the signature covers it all
    assert rep.stats.refused_signatures == {"missing X-Bogus": 1, "wrong X-Bogus": 1}


@pytest.mark.browser
def test_gnarly_refuses_x_bogus_alone_but_the_pages_own_calls_get_items(page, make_replica):
    rep = site(make_replica, "gnarly")
    video_id = a_video(rep)
    own = open_video_page(page, rep, video_id)
    assert [item["id"] for item in own.json()["itemList"]] == rep.catalog.by_id[video_id].related[:16]
    sent = parse_qs(urlsplit(own.url).query)
    assert {"X-Bogus", "ts", "X-Gnarly"} <= set(sent)
    page.wait_for_selector('[data-e2e="related-video-item"]')  # the page still renders its links

    url = related_path(video_id)
    assert refused(in_page_fetch(page, f"{url}&X-Bogus={page.evaluate(FRONTIER_SIGN_JS, url)}"))
    assert rep.stats.refused_signatures == {"missing ts": 1}
    # The X-Gnarly function and both keys stay inside the page script's closure.
    exposed = page.evaluate("['SIGNING', 'keyedHash', 'xGnarly', 'signedUrl'].filter((name) => name in window)")
    assert exposed == [] and page.evaluate("Object.keys(window.byted_acrawler)") == ["frontierSign"]

    recommend = []
    page.on("response", lambda r: recommend.append(r) if "/api/recommend/item_list/" in r.url else None)
    page.goto(f"{rep.base_url}/foryou")
    page.wait_for_selector(ARTICLES)
    with page.expect_response(lambda r: "/api/recommend/item_list/" in r.url) as more:
        page.keyboard.press("ArrowDown")
    more.value.finished()
    assert len(recommend) >= 2 and all(response.json()["itemList"] for response in recommend)
    assert rep.stats.refused_signatures == {"missing ts": 1}


@pytest.mark.browser
def test_gnarly_refuses_a_ts_more_than_60_s_off_the_replicas_clock(page, make_replica):
    now = [time.time() - 3 * 86400]  # the page's ts follows the replica's clock, not the browser's
    rep = site(make_replica, "gnarly", clock=lambda: now[0])
    video_id = a_video(rep)
    own = open_video_page(page, rep, video_id)
    assert own.json()["itemList"]
    ts = int(parse_qs(urlsplit(own.url).query)["ts"][0])
    assert abs(ts - now[0]) < 10

    now[0] = ts + 60
    assert item_ids(in_page_fetch(page, own.url))  # the page's own URL, replayed within the minute
    now[0] = ts + 61
    assert refused(in_page_fetch(page, own.url))
    now[0] = ts - 61
    assert refused(in_page_fetch(page, own.url))
    assert rep.stats.refused_signatures == {"stale ts": 2}


@pytest.mark.browser
def test_keys_differ_between_two_starts(page, make_replica):
    first, second = site(make_replica, "xbogus"), site(make_replica, "xbogus")  # same seed, same catalog
    url = related_path(a_video(first))
    signatures = []
    for rep in (first, second):
        page.goto(f"{rep.base_url}/foryou")
        signatures.append(page.evaluate(FRONTIER_SIGN_JS, url))
    assert signatures[0] != signatures[1]
    with httpx.Client(timeout=10) as http:
        assert http.get(f"{first.base_url}{url}&X-Bogus={signatures[0]}").json()["itemList"]
        assert http.get(f"{second.base_url}{url}&X-Bogus={signatures[0]}").content == b""


# --- switching while serving ------------------------------------------------------------------------


def test_set_signing_and_the_admin_endpoint_switch_the_mode_mid_run(make_replica):
    rep = site(make_replica, "none")
    video_id = a_video(rep)
    with httpx.Client(base_url=rep.base_url, timeout=10) as http:
        assert http.get(related_path(video_id)).json()["itemList"]
        assert http.get("/api/item/detail/", params={"itemId": video_id}).json()["statusCode"] == 0
        rep.set_signing("xbogus")
        assert rep.signing == "xbogus"
        for path in (related_path(video_id), f"/api/item/detail/?itemId={video_id}", "/api/recommend/item_list/"):
            answer = http.get(path)
            assert answer.status_code == 200 and answer.content == b"" and answer.headers["tt_orcas_res"] == "1"
        assert rep.stats.refused_signatures == {"missing X-Bogus": 3}

        switched = http.post("/__replica__/signing", data={"mode": "none"})  # a form body
        assert switched.status_code == 200 and switched.json() == {"signing": "none"} and rep.signing == "none"
        assert http.get(related_path(video_id)).json()["itemList"]
        assert http.post("/__replica__/signing", params={"mode": "gnarly"}).json() == {"signing": "gnarly"}
        assert rep.signing == "gnarly" and http.get(related_path(video_id)).content == b""
        bad = http.post("/__replica__/signing", params={"mode": "sometimes"})
        assert bad.status_code == 400 and "unknown signing mode 'sometimes'" in bad.json()["error"]
        assert http.post("/__replica__/signing").status_code == 400
        assert rep.signing == "gnarly"
