"""The pure contract parsers on hand-written fixtures (every layout and missing-field case) and on the
real captured shapes in ../shared/tiktok-fixtures when that folder exists."""

from __future__ import annotations

import html
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from tiktok_corpus.errors import BlockedError, ContractError, ItemUnavailable
from tiktok_corpus.features.columns import hashtag_names
from tiktok_corpus.tiktok.contract import (
    MediaUrl,
    detect_block,
    envelope_time,
    is_expired,
    media_urls_from_json,
    media_urls_json,
    page_url,
    parse_item,
    parse_item_detail,
    parse_item_list,
    parse_stats,
    parse_video_page,
    redact_url,
    url_expiry,
    validate_video_id,
)
from tiktok_corpus.tiktok.contract.records import URL_KIND_CHARS

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "tiktok-fixtures"
needs_shared = pytest.mark.skipif(
    not SHARED_FIXTURES.is_dir(), reason=f"{SHARED_FIXTURES} does not exist (real captured shapes unavailable)"
)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_modern_list_prefers_exact_stats_and_orders_media_urls():
    listing = parse_item_list(fixture("recommend_modern.json"))
    first = listing.items[0]
    assert first.id == "7400000000000000001"
    assert first.stats.play_count == 1234567 and first.stats.repost_count == 5 and first.stats.exact
    assert first.author.id == "6800000000000000001" and first.author.follower_count == 12345
    assert first.create_time == 1789000000
    assert first.hashtags == (("running", "1001"), ("fyp", "1002"), ("sunset", None))
    kinds = [m.kind for m in first.media_urls]
    assert kinds == ["gear:normal_720_0", "play_addr", "download_addr", "other_gear:bytevc1_720", "aweme_play"]
    assert all("bvc2" not in m.url for m in first.media_urls)
    assert first.kind == "video" and not first.private
    assert listing.has_more and listing.skipped == ("bad_id", "malformed_item")


@pytest.mark.parametrize(
    ("item_list", "kind"),
    [
        ('{"a": 1}', "malformed_json"),
        ('"7400000000000000001"', "malformed_json"),
        ('[{"id": "../x"}, {}]', "unreadable_list"),
    ],
)
def test_an_item_list_that_is_no_list_or_holds_no_readable_item_is_no_answer(item_list, kind):
    """Taken for an empty list, it marked the crawl's parent expanded with no children, for good: a changed
    schema would have used up the whole frontier and ended the crawl as exhausted, exit 0."""
    with pytest.raises(ContractError) as refused:
        parse_item_list(f'{{"statusCode": 0, "itemList": {item_list}}}')
    assert refused.value.kind == kind and refused.value.retryable
    assert parse_item_list('{"statusCode": 0, "itemList": []}').items == ()  # a genuine empty answer


def test_non_video_items_are_typed():
    items = {item.id[-1]: item for item in parse_item_list(fixture("recommend_modern.json")).items}
    assert items["2"].kind == "photo" and not items["2"].media_urls
    assert items["3"].kind == "ad" and items["4"].kind == "live"
    assert items["5"].private
    bare = items["6"]
    assert bare.author is None and bare.stats is None and bare.desc is None


def test_older_list_layout_with_string_author_and_rounded_stats():
    old, no_id_author = parse_item_list(fixture("related_old_layout.json")).items
    assert old.id == "7400000000000000011"
    assert old.author.unique_id == "old.school" and old.author.id == "6800000000000000011"
    assert old.author.heart_count == 1000
    assert old.stats.play_count == 5000 and old.stats.like_count == 250 and old.stats.comment_count == 3
    assert old.stats.share_count is None and not old.stats.exact
    assert old.duration_s == 12.5 and old.width == 576
    assert no_id_author.author.id is None and no_id_author.stats.play_count == 77


def test_a_negative_count_is_no_count():
    """No count is below zero: "-7" in statsV2 was stored as an exact count, and one such count made the
    export's labels refuse the whole corpus."""
    stats = parse_stats({"playCount": 700, "diggCount": -1}, {"playCount": "-7", "diggCount": "-3"})
    assert stats.play_count == 700 and stats.like_count is None and not stats.exact
    raw = {"id": "7400000000000000032", "author": {"uniqueId": "x"}, "authorStats": {"followerCount": -1}}
    assert parse_item(raw).author.follower_count is None


@pytest.mark.parametrize("exact", [None, {"heart": "6400000000"}, {"heartCount": "6400000000"}])
def test_an_author_past_two_billion_hearts_keeps_them(exact):
    """As captured (@espn): the rounded ``heartCount`` wrapped at 2**32 to 2.1 billion, where ``heart``
    and the exact strings said 6.4 billion; without the exact block, or with only one name in it, the
    wrapped one was stored."""
    raw = {
        "id": "7400000000000000031",
        "author": {"id": "6800000000000000031", "uniqueId": "espn"},
        "authorStats": {"heart": 6400000000, "heartCount": 2100000000, "followerCount": 61200000},
    }
    if exact is not None:
        raw["authorStatsV2"] = exact
    author = parse_item(raw).author
    assert author.heart_count == 6400000000 and author.follower_count == 61200000


@pytest.mark.parametrize(
    "name, unique_id",
    [
        ("video_page_rehydration.html", "cat.person"),
        ("video_page_sigi.html", "sigi.user"),
        ("video_page_next.html", None),
    ],
)
def test_every_video_page_layout(name, unique_id):
    item = parse_video_page(fixture(name))
    assert validate_video_id(item.id) == item.id
    assert (item.author.unique_id if item.author else None) == unique_id
    assert item.media_urls, "every layout carries a playable URL"


@pytest.mark.parametrize("name", ["video_page_rehydration.html", "video_page_next.html"])
def test_a_page_embedding_another_item_is_no_answer_for_the_one_asked(name):
    """A page of another item (a redirect, a cache) was read as the one asked: the download stored its
    file, the tracker its counts, under the asked video's id; it is refused as a detail answer is."""
    page = fixture(name)
    embedded = parse_video_page(page).id
    assert parse_video_page(page, embedded).id == embedded
    with pytest.raises(ContractError) as other:
        parse_video_page(page, "7000000000000000001")
    assert other.value.kind == "wrong_item" and f"embeds item {embedded}" in other.value.message


@pytest.mark.parametrize(
    "page",
    [
        '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__">' * 20_000,  # never closed
        '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__"' * 20_000,  # no tag ever ends
        '<script type="x"></script><script src="a.js">{"not": "it"}</script>',
    ],
)
def test_a_page_without_a_whole_item_script_is_no_item(page):
    """Hostile pages of unclosed tags: no item, told as such (a regex took half a minute on them)."""
    with pytest.raises(ContractError) as none:
        parse_video_page(page)
    assert none.value.kind == "no_rehydration"


def test_the_item_script_is_found_among_others_whatever_its_attributes():
    item = parse_video_page(fixture("video_page_rehydration.html"))
    script = re.search(
        r'(<script[^>]*id="__UNIVERSAL_DATA_FOR_REHYDRATION__"[^>]*>)(.*?)</script>',
        fixture("video_page_rehydration.html"),
        re.S,
    )
    page = f'<script>var a = "<b>";</script><script data-x="1" {script.group(1)[8:]}{script.group(2)}</script>'
    assert parse_video_page(page).id == item.id


def test_rehydration_page_reads_gears_and_hashtags():
    item = parse_video_page(fixture("video_page_rehydration.html"))
    assert item.media_urls[0].kind == "gear:normal_540_0" and item.media_urls[0].data_size == 123456
    assert item.hashtags == (("cats", "2001"),) and item.stats.exact


@pytest.mark.parametrize(
    "body, error, kind",
    [
        ("", BlockedError, "empty_body"),
        ("   \n", BlockedError, "empty_body"),
        ("waf.html", BlockedError, "waf"),
        ("captcha_page.html", BlockedError, "captcha"),
        ("captcha.json", BlockedError, "captcha"),
        ("no_item_list.json", BlockedError, "no_item_list"),
        ("invalid_count.json", ContractError, "invalid_request"),
        ('{"itemList": [', ContractError, "malformed_json"),
        ('{"itemList": [], "statusCode": NaN}', ContractError, "malformed_json"),  # NaN is not JSON
        ('{"itemList": [1e999]}', ContractError, "malformed_json"),
        ('{"itemList": [], "x": "\\ud800", "y": Infinity}', ContractError, "malformed_json"),  # in the fallback too
    ],
)
def test_list_answers_that_are_not_lists(body, error, kind):
    raw = fixture(body) if body.endswith((".json", ".html")) else body
    with pytest.raises(error) as info:
        parse_item_list(raw)
    assert info.value.kind == kind


def test_video_page_failures_are_typed():
    with pytest.raises(ItemUnavailable) as deleted:
        parse_video_page(fixture("video_page_deleted.html"))
    assert deleted.value.kind == "deleted" and not deleted.value.retryable
    with pytest.raises(ContractError) as missing:
        parse_video_page(fixture("video_page_no_rehydration.html"))
    assert missing.value.kind == "no_rehydration" and missing.value.retryable
    with pytest.raises(BlockedError) as waf:
        parse_video_page(fixture("waf.html"))
    assert waf.value.kind == "waf"


@pytest.mark.parametrize(
    "page",
    [
        '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__">{"__DEFAULT_SCOPE__":{"webapp.video-detail":'
        '{"statusCode":%d}}}</script>',
        '<script id="SIGI_STATE">{"VideoPage":{"statusCode":%d},"ItemModule":{}}</script>',
        '<script id="__NEXT_DATA__">{"props":{"pageProps":{"statusCode":%d,"itemInfo":{}}}}</script>',
    ],
)
@pytest.mark.parametrize("code, kind", [(10204, "deleted"), (10216, "private")])
def test_a_gone_post_is_told_in_every_page_layout(page, code, kind):
    """A deleted or private post is final in each layout; the older __NEXT_DATA__ one was read as a page
    missing its script (retried as transient, the tracker never letting the post go)."""
    with pytest.raises(ItemUnavailable) as gone:
        parse_video_page(page % code)
    assert gone.value.kind == kind and not gone.value.retryable


def test_a_photo_page_keeps_its_post_under_its_own_scope():
    page = fixture("video_page_rehydration.html").replace('"webapp.video-detail"', '"webapp.photo-detail"')
    assert page != fixture("video_page_rehydration.html")
    assert parse_video_page(page).id == parse_video_page(fixture("video_page_rehydration.html")).id


def test_detail_answers():
    item = parse_item_detail(fixture("detail_ok.json"))
    assert item.id == "7400000000000000051" and is_expired(item.media_urls[0].url, now=1000)
    assert "secret" not in redact_url(item.media_urls[0].url)
    with pytest.raises(ItemUnavailable) as private:
        parse_item_detail(fixture("detail_private.json"))
    assert private.value.kind == "private"
    assert parse_item_detail(fixture("detail_ok.json"), "7400000000000000051").id == "7400000000000000051"
    with pytest.raises(ContractError, match="the detail of 7400000000000000052 describes item 7400000000000000051"):
        parse_item_detail(fixture("detail_ok.json"), "7400000000000000052")  # another item's counts and files
    # An empty itemStruct is an answer withheld (retried), not a post without an id (failed for good).
    with pytest.raises(BlockedError) as withheld:
        parse_item_detail({"statusCode": 0, "itemInfo": {"itemStruct": {}}}, "7400000000000000051")
    assert withheld.value.kind == "no_item" and withheld.value.retryable
    empty_page = fixture("video_page_rehydration.html").replace(
        '"itemStruct":{"id":"7400000000000000021"', '"itemStruct":{},"x":{"id":"7400000000000000021"'
    )
    with pytest.raises(ContractError) as page:
        parse_video_page(empty_page, "7400000000000000021")
    assert page.value.kind == "no_rehydration" and page.value.retryable


def test_detect_block_names_each_page():
    assert detect_block(fixture("waf.html")) == "waf"
    assert detect_block(fixture("captcha_page.html")) == "captcha"
    assert detect_block(fixture("video_page_rehydration.html")) is None
    assert detect_block("<html><body><h1>Something went wrong</h1><button>Refresh</button></body></html>") == (
        "error_panel"
    )
    assert detect_block('<html><head><link rel="canonical" href="/login?redirect=x"></head></html>') == "login"


BLOCK_WORDS = ("captcha-verify", "Verify to continue", "_wafchallengeid", 'id="wci"', "Something went wrong. Refresh")


@pytest.mark.parametrize("words", BLOCK_WORDS)
def test_a_caption_holding_block_words_leaves_its_page_a_page(words):
    """A caption is anyone's text: in the embedded JSON, or shown in the page (where its "<" and quotes
    come out escaped), it never makes a usable page a block page."""
    page = fixture("video_page_rehydration.html").replace('"page item #Cats"', json.dumps(f"page item {words}"))
    shown = html.escape(f'<div class="captcha-verify-container">{words}</div>', quote=True)
    page = page.replace("<body>", f'<body><div data-e2e="video-desc">{shown}</div>')
    assert detect_block(page) is None
    assert parse_video_page(page).desc == f"page item {words}"


@pytest.mark.parametrize("before", [210_000, 199_990])
def test_a_large_page_whose_data_comes_late_is_still_a_page(before):
    """A feed's DOM (styles, cells of captions) can pass 200,000 characters before its data script: read
    only that far, a caption saying "Verify to continue" made it a captcha page, and a script cut at the
    limit left its captions read as markup."""
    page = fixture("video_page_rehydration.html")
    caption = '<div data-e2e="video-desc">Verify to continue: Something went wrong. Refresh</div>'
    filler = "<style>" + "x" * (before - len(caption)) + "</style>"
    assert detect_block(page.replace("<body>", f"<body>{caption}{filler}")) is None
    assert detect_block(f"<html><body>{filler}{caption}</body></html>") == "captcha"


def test_a_login_modal_over_a_page_is_no_block():
    """The contract's login modal sits over a usable page, to be closed; only the login page itself blocks."""
    modal = '<div data-e2e="login-modal"><p>Log in</p><button data-e2e="modal-close-inner-button">x</button></div>'
    page = fixture("video_page_rehydration.html").replace("<body>", f"<body>{modal}")
    assert detect_block(page) is None
    assert parse_video_page(page).id == "7400000000000000021"


@pytest.mark.parametrize(
    "unique_id", ["x/../../api/item/detail/?itemId=1#", "a b", "@x", "", "x" * 65, "n\u00e9e", "..%2F"]
)
def test_a_user_name_that_is_no_user_name_never_reaches_a_url(unique_id):
    item = parse_item({"id": "7", "author": {"id": "1", "uniqueId": unique_id}})
    assert item.author.unique_id is None
    assert parse_item({"id": "7", "author": unique_id, "authorId": "1"}).author.unique_id is None
    assert page_url("https://www.tiktok.com/", "7", unique_id) == "https://www.tiktok.com/@_/video/7"  # a stored one


def test_a_valid_user_name_is_kept():
    item = parse_item({"id": "7", "author": {"id": "1", "uniqueId": "cat.person_2"}})
    assert page_url("http://x", "7", item.author.unique_id) == "http://x/@cat.person_2/video/7"


@pytest.mark.parametrize("bad", ["../etc", "12a", "", None, "1" * 40])
def test_ids_must_be_digits(bad):
    with pytest.raises(ContractError):
        validate_video_id(bad)
    with pytest.raises(ContractError):
        page_url("http://x", bad)


# --- real captured shapes ----------------------------------------------------------------------


@needs_shared
def test_real_item_detail():
    item = parse_item_detail((SHARED_FIXTURES / "item_detail.json").read_text())
    assert item.kind == "video" and not item.private and item.author.unique_id == "tiktok"
    assert item.stats is not None and item.stats.play_count is not None
    assert item.media_urls[0].kind.startswith("gear:") and item.duration_s


@needs_shared
def test_real_photo_post_is_not_a_video():
    item = parse_item_detail((SHARED_FIXTURES / "item_detail_photo.json").read_text())
    assert item.kind == "photo" and not item.media_urls and item.hashtags


@needs_shared
def test_real_missing_item():
    with pytest.raises(ItemUnavailable) as info:
        parse_item_detail((SHARED_FIXTURES / "item_detail_missing.json").read_text())
    assert info.value.kind == "deleted"


@needs_shared
@pytest.mark.parametrize("name, count", [("items_rich.json", 4), ("posts.json", 2)])
def test_real_item_lists(name, count):
    raw = (SHARED_FIXTURES / name).read_text()
    listing = parse_item_list(raw)
    assert len(listing.items) == count and not listing.skipped
    expected_ids = [str(item["id"]) for item in json.loads(raw)["itemList"]]
    assert [item.id for item in listing.items] == expected_ids
    assert all(item.author and item.author.id for item in listing.items)
    # every captured sound is an "original sound", one of them titled in its author's own words
    assert all(item.music_original is True for item in listing.items)


@pytest.mark.parametrize(
    "music, original",
    [
        ({"title": "Go follow zDeezee", "original": True}, True),  # a real title that never says "original sound"
        ({"title": "son original - Léa", "original": True}, True),
        ({"title": "Song - Band", "original": False}, False),
        ({"title": "original sound - x", "original": "true"}, None),  # no JSON boolean: unknown, not a guess
        ({"title": "original sound - x"}, None),
        (None, None),
    ],
)
def test_the_sounds_original_flag_is_read_as_the_site_gives_it(music, original):
    raw = {"id": "7", "video": {"playAddr": "https://cdn.example/7.mp4"}, "music": music}
    assert parse_item(raw).music_original is original


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://v16.tiktokcdn.com/v/a.mp4?a=1&expire=1760000000&signature=x", 1760000000),
        ("https://v16.tiktokcdn.com/v/a.mp4?expire=1760000000", 1760000000),
        ("https://v16.tiktokcdn.com/v/a.mp4?x_expire=5&a=1", None),  # another parameter's name ends alike
        ("https://v16.tiktokcdn.com/v/a.mp4?expire=soon", None),
        ("https://v16.tiktokcdn.com/v/a.mp4?expire=12x&b=2", None),
        ("https://v16.tiktokcdn.com/v/a.mp4#expire=5", None),  # a fragment is not the query
        ("https://v16.tiktokcdn.com/v/a.mp4", None),
        ("https://v16.tiktokcdn.com/v/a.mp4?expire=" + "9" * 5000, None),  # int() refuses it: the try failed
        ("https://v16.tiktokcdn.com/v/a.mp4?expire=\u0661\u0662", None),  # digits, but not ASCII ones
    ],
)
def test_url_expiry_reads_only_the_expire_parameter(url, expected):
    assert url_expiry(url) == expected


def test_media_urls_round_trip_through_their_stored_json_with_every_field():
    urls = (
        MediaUrl("gear:normal_720_0", "https://cdn.test/a.mp4?expire=1", 1234, "h264"),
        MediaUrl("play_addr", "https://cdn.test/b.mp4"),
    )
    stored = media_urls_json(urls)
    assert all(set(entry) == {f.name for f in fields(MediaUrl)} for entry in stored)
    assert media_urls_from_json(json.loads(json.dumps(stored))) == urls


@pytest.mark.parametrize(
    ("raw", "count"),
    [
        (42, 42),
        ("42", 42),
        (" 42 ", 42),
        ("-3", None),  # no count is below zero
        ("\u0664\u0662", 42),  # Arabic-Indic digits are digits to int() as to \d
        ("1.9", 1),
        ("1e3", 1000),
        ("+5", 5),
        (7.0, 7),
        (float("nan"), None),
        (float("inf"), None),
        ("inf", None),
        ("Infinity", None),
        ("-Infinity", None),
        ("1e999", None),
        (1e300, None),
        ("99999999999999999999999", None),
        (2**63, None),
        (2**63 - 1, 2**63 - 1),
        (-(2**63) + 1, None),
        ("9" * 5000, None),
        ("-", None),
        ("12a", None),
        ("", None),
        (True, None),
        (None, None),
        ([1], None),
    ],
)
def test_counts_are_read_tolerantly(raw, count):
    assert parse_stats(None, {"playCount": raw}).play_count == count


def test_pixel_sizes_and_durations_the_columns_cannot_hold_are_unknown():
    item = parse_item({"id": "7", "video": {"width": 2**31, "height": "1e999", "duration": "inf", "size": 2**64}})
    assert (item.width, item.height, item.duration_s, item.size) == (None, None, None, None)
    assert parse_item({"id": "7", "video": {"width": 2**31 - 1, "height": "1080"}}).height == 1080


def test_a_posting_time_that_is_no_unix_second_is_unknown():
    """Milliseconds, or a number whose ages would overflow the tracker's schedule, are no posting time."""
    times = {value: parse_item({"id": "7", "createTime": value}).create_time for value in (1790959957, "1790959957")}
    assert set(times.values()) == {1790959957}
    for value in (1790959957000, 2**62, 12614400000, 0, -5, "soon"):  # 12614400000: year 2369
        assert parse_item({"id": "7", "createTime": value}).create_time is None, value


def test_a_site_time_no_timestamp_can_hold_is_unknown():
    assert envelope_time({"extra": {"now": 1790959957000}}) == 1790959957.0
    assert envelope_time({"extra": {"now": 2**62}}) is None
    assert envelope_time({"extra": {"now": 12614400000 * 1000}}) is None  # 2369: exports failed at an age


def test_a_hashtag_lower_casing_lengthens_is_bounded_as_stored():
    """ "İ".lower() is two characters: a 200-character tag became 400, past its column, and Postgres refused
    the write of the whole list on every resume."""
    raw = {"id": "7", "textExtra": [{"type": 1, "hashtagName": "İ" * 200}, {"type": 1, "hashtagName": " Fine "}]}
    assert parse_item(raw).hashtags == (("fine", None),)


def test_a_hashtag_name_reads_back_from_a_csv_export_as_it_was_stored():
    """The CSV export joins a row's names with spaces; its reader splits on spaces, commas and ``#`` and
    reads a cell starting with ``[`` as JSON: a name holding any of them came back as other names."""
    names = ["a b", "x,y", "#lead", '["p","q"]', 'say"', "tab\tbed", "ok_1", "été", "#"]
    raw = {"id": "7", "textExtra": [{"type": 1, "hashtagName": name} for name in names]}
    stored = [name for name, _ in parse_item(raw).hashtags]
    assert stored == ["lead", "ok_1", "été"]
    assert hashtag_names(" ".join(stored)) == stored


def test_a_gear_name_longer_than_its_column_is_cut_to_it():
    """A real h265 gear (``comet_adapt_lowest_540_1``) made ``other_gear:comet_adapt_lowest_540_1``, 35
    characters: the download attempt's row of that candidate failed on Postgres."""
    gear = {"GearName": "comet_adapt_lowest_540_1", "CodecType": "h265_hvc1", "PlayAddr": {"UrlList": ["https://c/1"]}}
    [candidate] = parse_item({"id": "7", "video": {"bitrateInfo": [gear]}}).media_urls
    assert candidate.kind == "other_gear:comet_adapt_lowest_540_1"[:URL_KIND_CHARS] and len(candidate.kind) == 32
    # a row stored before kinds were cut is read back cut: its attempt's row is written like any other
    stored = [{"kind": "other_gear:comet_adapt_lowest_540_1", "url": "https://c/1"}]
    assert media_urls_from_json(stored)[0].kind == candidate.kind


def test_a_list_nested_too_deep_to_clean_of_nul_is_malformed_not_a_crash():
    nested = '{"statusCode":0,"itemList":[],"extra":' + "[" * 600 + '"a\\u0000"' + "]" * 600 + "}"
    with pytest.raises(ContractError) as info:
        parse_item_list(nested)
    assert info.value.kind == "malformed_json"


def test_one_item_that_cannot_be_read_is_skipped_and_the_list_goes_on():
    """Whatever surprise one item's fields hold (here a caption nested so deep that reading it overflows
    the stack), it is that item's error: the list keeps its other items, a lone item fails finally."""
    deep = "[" * 990 + "]" * 990
    body = f'{{"statusCode": 0, "itemList": [{{"id": "7", "desc": {deep}}}, {{"id": "8", "desc": "fine"}}]}}'
    listing = parse_item_list(body)
    assert [item.id for item in listing.items] == ["8"] and listing.skipped == ("malformed_item",)
    with pytest.raises(ContractError) as info:
        parse_item_detail(f'{{"statusCode": 0, "itemInfo": {{"itemStruct": {{"id": "7", "desc": {deep}}}}}}}')
    assert info.value.kind == "malformed_item" and not info.value.retryable


def test_a_caption_cut_inside_an_emoji_keeps_its_list_and_becomes_storable_text():
    """orjson refuses a lone surrogate escape; the list is still read, the half emoji replaced."""
    body = (
        '{"statusCode": 0, "itemList": [{"id": "7", "desc": "sunset \\ud83d", "author": {"id": "1", "nickname": '
        '"\\udc00x"}}, {"id": "8", "desc": "whole \\ud83d\\ude00"}]}'
    )
    first, second = parse_item_list(body).items
    assert first.desc == "sunset \ufffd" and first.author.nickname == "\ufffdx"
    assert second.desc == "whole \U0001f600"
    assert first.desc.encode("utf-8") and first.author.nickname.encode("utf-8")  # what a database takes
    page = fixture("video_page_rehydration.html").replace('"page item #Cats"', '"page item \\ud83d"')
    assert parse_video_page(page).desc == "page item \ufffd"
