"""Real Chromium on the replica: the pages' own JS calls the APIs, as on tiktok.com."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from tiktok_corpus.config import Settings

pytestmark = pytest.mark.browser
ARTICLES = 'article[data-e2e="recommend-list-item-container"]'


@pytest.fixture
def page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=Settings().resolved_browser_path())
        context = browser.new_context(viewport={"width": 1000, "height": 800})
        yield context.new_page()
        browser.close()


def test_for_you_page_loads_more_items_as_it_scrolls(page, replica):
    waf_before = replica.stats.faults["waf"]  # a session-wide count: other tests meet the interstitial too
    replica.set_faults({"waf": 1.0})  # the interstitial's JS must solve itself and reload
    captured = []
    page.on("response", lambda r: captured.append(r) if "/api/recommend/item_list/" in r.url else None)
    page.goto(f"{replica.base_url}/foryou")
    page.wait_for_selector(ARTICLES)
    for gesture in (lambda: page.mouse.wheel(0, 4000), lambda: page.keyboard.press("ArrowDown")):
        for _ in range(2):  # each gesture loads one more batch once the last one is on the page
            shown = page.locator(ARTICLES).count()
            gesture()
            page.wait_for_function(f"document.querySelectorAll('{ARTICLES}').length > {shown}")
    assert replica.stats.faults["waf"] - waf_before >= 1
    assert len(captured) >= 5 and all(r.status == 200 for r in captured)
    ids = page.locator(ARTICLES).evaluate_all("nodes => nodes.map(n => n.dataset.id)")
    assert set(ids) <= set(replica.catalog.by_id)


def test_video_page_calls_related_and_unlocks_the_cdn(page, replica):
    video = next(v for v in replica.catalog.videos if v.kind == "video")
    with page.expect_response(lambda r: "/api/related/item_list/" in r.url) as related:
        page.goto(f"{replica.base_url}/@_/video/{video.id}")
    body = related.value.json()
    assert [item["id"] for item in body["itemList"]] == video.related[:16]
    page.wait_for_selector('[data-e2e="related-video-item"]')
    item = page.evaluate(
        "JSON.parse(document.getElementById('__UNIVERSAL_DATA_FOR_REHYDRATION__').textContent)"
        ".__DEFAULT_SCOPE__['webapp.video-detail'].itemInfo.itemStruct"
    )
    media = page.request.get(item["video"]["playAddr"], headers={"Range": "bytes=0-"})
    assert media.status == 206 and media.body() == replica.media_path(video.id).read_bytes()
