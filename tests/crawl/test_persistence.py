"""Frontier and persistence on real SQLite and Postgres: what one seed batch or expansion writes."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import orjson
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from tests.waiting import wait_for
from tiktok_corpus.config import Settings
from tiktok_corpus.store.crawl import (
    Expansion,
    Sighting,
    corpus_video_count,
    record_expansion,
    record_expansions,
    record_seeds,
    seed_count,
)
from tiktok_corpus.store.crawl_runs import close_killed_runs, start_run
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.frontier import claim_parents, fail_parent, frontier_state, retry_failed_parents, retry_parent
from tiktok_corpus.store.models import (
    Author,
    CrawlRun,
    DownloadAttempt,
    Hashtag,
    MediaFile,
    RelatedEdge,
    StatsSnapshot,
    Video,
    VideoHashtag,
    utcnow,
)
from tiktok_corpus.store.sightings import expand_order_key
from tiktok_corpus.store.workers import worker_name
from tiktok_corpus.tiktok.blocks import BlockPolicy
from tiktok_corpus.tiktok.contract import ItemList, parse_item, parse_item_list
from tiktok_corpus.tiktok.contract.records import CODEC_CHARS, HASHTAG_CHARS, ID_CHARS, URL_KIND_CHARS

FIXTURES = Path(__file__).parent / "fixtures"


def item(video_id: int, **extra) -> dict:
    return {
        "id": str(video_id),
        "author": {"id": f"9{video_id}", "uniqueId": f"u{video_id}"},
        "statsV2": {"playCount": str(video_id * 10)},
        "video": {"playAddr": f"https://cdn.example/{video_id}.mp4", "duration": 10},
        **extra,
    }


def listing(*ids: int) -> ItemList:
    return ItemList(tuple(parse_item(item(i)) for i in ids))


@pytest.fixture
def any_store(any_db_url, tmp_path):
    if any_db_url.startswith("postgresql"):
        from tiktok_corpus.store.db import upgrade_database

        upgrade_database(Settings(db_url=any_db_url, data_dir=tmp_path))
    opened = open_store(Settings(db_url=any_db_url, data_dir=tmp_path))
    yield opened
    opened.dispose()


def count(store, model, *where) -> int:
    with store.sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_seed_batch_records_items_kinds_and_queue_statuses(any_store):
    batch = parse_item_list((FIXTURES / "recommend_modern.json").read_text())
    sighting = record_seeds(any_store, batch, seeds=10, max_videos=100, run_id=None, seed=3)
    assert len(sighting.new) == 6  # the two unparseable entries are not items
    with any_store.sessions() as session:
        rows = {v.id[-1]: v for v in session.scalars(select(Video))}
    assert {k: rows[k].item_kind for k in rows} == {
        "1": "video",
        "2": "photo",
        "3": "ad",
        "4": "live",
        "5": "private",
        "6": "video",
    }
    assert rows["1"].download_status == "pending" and rows["1"].expand_status == "pending"
    assert rows["1"].media_urls[0] == {
        "kind": "gear:normal_720_0",
        "url": "https://cdn.example/g720/1.mp4",
        "data_size": 2400000,
        "codec": "h264",
    }
    assert rows["1"].expand_order == expand_order_key(3, rows["1"].id)
    assert rows["1"].probe_status == "pending"
    for key, why in (("2", "photo"), ("3", "ad"), ("4", "live"), ("5", "private"), ("6", "no_media_urls")):
        assert rows[key].download_status == "skipped" and rows[key].download_error_kind == why
        assert rows[key].probe_status == "skipped" and rows[key].probe_error_kind == why, "no file will come"
    assert rows["2"].expand_status == "skipped" and rows["6"].expand_status == "pending"
    assert all(v.source == "foryou" and v.depth == 0 for v in rows.values())
    assert count(any_store, Hashtag) == 3 and count(any_store, VideoHashtag) == 3
    assert count(any_store, StatsSnapshot) == 6
    with any_store.sessions() as session:
        author = session.get(Author, "6800000000000000001")
    assert author.follower_count == 12345 and author.verified is True


CHALLENGE_IDS = {"cats": "101", "dogs": "102", "birds": "103"}


def test_each_video_links_to_its_own_hashtags(any_store):
    """The links look their hashtag ids up by name inside the insert: a tag seen again keeps its row."""

    def tagged(video_id: int, *names: str) -> dict:
        return item(video_id, challenges=[{"id": CHALLENGE_IDS[name.lower()], "title": name} for name in names])

    record_seeds(
        any_store, ItemList((parse_item(tagged(1, "Cats", "dogs")),)), seeds=5, max_videos=10, run_id=None, seed=0
    )
    record_seeds(
        any_store, ItemList((parse_item(tagged(2, "dogs", "birds")),)), seeds=5, max_videos=10, run_id=None, seed=0
    )
    hashtags, links = Hashtag.__table__, VideoHashtag.__table__
    with any_store.sessions() as session:
        pairs = set(
            session.execute(
                select(links.c.video_id, hashtags.c.name, hashtags.c.tiktok_id).join(
                    hashtags, hashtags.c.id == links.c.hashtag_id
                )
            ).all()
        )
    assert pairs == {
        ("1", "cats", "101"),
        ("1", "dogs", "102"),
        ("2", "dogs", "102"),
        ("2", "birds", "103"),
    }
    assert count(any_store, Hashtag) == 3


def test_seeds_stop_at_the_requested_count_and_resightings_append_snapshots(any_store):
    first = record_seeds(any_store, listing(1, 2, 3), seeds=4, max_videos=100, run_id=None, seed=0)
    second = record_seeds(any_store, listing(3, 4, 5, 6), seeds=4, max_videos=100, run_id=None, seed=0)
    assert first.new == ("1", "2", "3") and second.new == ("4",)
    assert second.in_corpus == ("3", "4")  # 5 and 6 are not part of the corpus
    assert count(any_store, Video) == 4
    assert count(any_store, StatsSnapshot, StatsSnapshot.video_id == "3") == 2


def test_expansion_adds_at_most_fanout_records_ranked_edges_and_finishes_parent(any_store):
    record_seeds(any_store, listing(1, 2), seeds=2, max_videos=100, run_id=None, seed=0)
    [parent] = claim_parents(any_store, "bfs", worker_name(any_store, "t"))
    assert parent == "1"
    related = listing(2, 1, 10, 11, 12, 13)  # 2 is known, 1 is the parent itself
    sighting = record_expansion(
        any_store, parent, related, method="signed", fanout=3, max_videos=100, run_id=None, seed=0
    )
    assert sighting.new == ("10", "11", "12")
    with any_store.sessions() as session:
        edges = dict(
            session.execute(select(RelatedEdge.child_id, RelatedEdge.rank).where(RelatedEdge.parent_id == "1")).all()
        )
        parent_row = session.get(Video, "1")
        child = session.get(Video, "10")
    assert edges == {"2": 0, "10": 1, "11": 2, "12": 3}
    assert parent_row.expand_status == "expanded" and parent_row.expand_method == "signed"
    assert child.parent_id == "1" and child.depth == 1 and child.source == "related"
    assert frontier_state(any_store) == (4, 0)  # 2, 10, 11, 12 wait


def test_a_crawl_keeps_its_parents_claimed_past_a_lease_and_never_another_workers(any_store):
    """A fetch slowed past a lease (a low --max-rate, a suspended machine): the crawl renews the leases
    of the parents it holds, unstarted or in hand, so no other worker claims them meanwhile; a claim
    that went to another worker stays that worker's."""
    from tiktok_corpus.crawl.claims import ParentClaims

    record_seeds(any_store, listing(1, 2, 3), seeds=3, max_videos=100, run_id=None, seed=0)
    parents = ParentClaims(any_store, strategy="bfs", batch=2)
    parents.claim()
    in_hand = parents.take()
    [other] = claim_parents(any_store, "bfs", worker_name(any_store, "other"))
    lapsed = utcnow() - timedelta(seconds=1)
    with any_store.transaction() as session:
        session.execute(update(Video).values(expand_lease_until=lapsed))
    parents.renew()
    with any_store.sessions() as session:
        leases = dict(session.execute(select(Video.id, Video.expand_lease_until)).all())
    assert in_hand == "1" and other == "3"
    assert all(_aware(leases[video_id]) > utcnow() + timedelta(seconds=500) for video_id in ("1", "2"))
    assert _aware(leases["3"]) == lapsed, "another worker's claim"
    assert claim_parents(any_store, "bfs", worker_name(any_store, "late")) == ["3"]


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone (stored UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_expansion_stops_at_max_videos(any_store):
    record_seeds(any_store, listing(1), seeds=1, max_videos=3, run_id=None, seed=0)
    [parent] = claim_parents(any_store, "random", worker_name(any_store, "t"), draw=Random(0))
    sighting = record_expansion(
        any_store, parent, listing(20, 21, 22, 23), method="fetch", fanout=5, max_videos=3, run_id=None, seed=0
    )
    assert sighting.new == ("20", "21") and count(any_store, Video) == 3


def test_a_list_landing_once_the_corpus_is_full_leaves_its_parent_to_a_larger_target(any_store):
    """Two parents in flight as the target is reached: the first list fills the corpus, the second lands
    after. The second was recorded expanded with no child, so a later crawl asked for more videos never
    expanded it; it goes back to the frontier untried, its list unwritten, and expands then."""
    record_seeds(any_store, listing(1, 2), seeds=2, max_videos=4, run_id=None, seed=0)
    worker = worker_name(any_store, "t")
    assert sorted(claim_parents(any_store, "bfs", worker, 2)) == ["1", "2"]
    filling, late = (Expansion(parent, listing(10 * int(parent), 10 * int(parent) + 1), "fetch") for parent in "12")

    first, second = record_expansions(
        any_store, [filling, late], fanout=5, max_videos=4, run_id=None, seed=0, worker=worker
    )
    assert first is not None and first.new == ("10", "11") and first.expanded
    assert second == Sighting((), (), 4, expanded=False)
    with any_store.sessions() as session:
        parent = session.get(Video, "2")
        assert parent is not None and (parent.expand_status, parent.expand_attempts) == ("pending", 0)
        assert session.scalar(select(func.count()).select_from(RelatedEdge).where(RelatedEdge.parent_id == "2")) == 0

    [again] = claim_parents(any_store, "bfs", worker, 1)
    sighting = record_expansion(
        any_store, again, late.related, method="fetch", fanout=5, max_videos=6, run_id=None, seed=0
    )
    assert again == "2" and sighting.new == ("20", "21") and count(any_store, Video) == 6


def test_a_list_finding_the_corpus_filled_by_another_process_stops_this_ones_loops(any_store, tmp_path):
    """The list given back told this crawl nothing of the corpus: filled by another process, it stayed
    below the target in this one, whose loops claimed the same parent and fetched its list for ever."""
    from tiktok_corpus.crawl.options import CrawlOptions
    from tiktok_corpus.crawl.run import _Crawl

    record_seeds(any_store, listing(1, 2), seeds=2, max_videos=4, run_id=None, seed=0)
    options = CrawlOptions(max_videos=4, seeds=2, strategy="bfs")
    crawl = _Crawl(
        any_store,
        Settings(data_dir=tmp_path),
        options,
        policy=BlockPolicy(),
        progress=None,
        rng=Random(0),
        browser=None,
    )
    try:
        crawl.counters.videos = corpus_video_count(any_store)  # as the run counts at its start: 2
        mine = worker_name(any_store, "crawl")
        [parent] = claim_parents(any_store, "bfs", mine)
        [filling] = claim_parents(any_store, "bfs", "elsewhere:1:crawl")
        written = {"fanout": 5, "max_videos": 4, "run_id": None, "seed": 0}
        record_expansions(
            any_store, [Expansion(filling, listing(10, 11), "fetch")], **written, worker="elsewhere:1:crawl"
        )
        late = Expansion(parent, listing(20, 21), "fetch")
        [sighting] = record_expansions(any_store, [late], **written, worker=mine)

        crawl._landed(late, sighting)
        assert sighting is not None and not sighting.expanded and crawl.counters.videos == 4
    finally:
        crawl._db.shutdown()


def _batch_scenario() -> list[Expansion]:
    """Three expansions whose later lists re-sight what the earlier ones added (with a changed caption,
    an author lacking fields the first sighting had, shared hashtags), two methods, and a target that
    runs out in the last."""

    def tagged(video_id: int, *names: str, **extra) -> dict:
        return item(video_id, challenges=[{"id": f"c-{name}", "title": name} for name in names], **extra)

    sparse_author = {"author": {"id": "910", "uniqueId": None}, "desc": "edited #cats"}
    return [
        Expansion("1", ItemList((parse_item(tagged(10, "cats")), parse_item(tagged(11, "dogs")))), "fetch"),
        Expansion(
            "2",
            ItemList(
                (parse_item(tagged(10, "cats", "fresh", **sparse_author)), parse_item(item(12)), parse_item(item(1)))
            ),
            "page",
        ),
        Expansion("3", ItemList((parse_item(item(13)), parse_item(item(14)), parse_item(tagged(11, "dogs")))), "fetch"),
    ]


def _table_dump(store) -> dict[str, list[tuple]]:
    """Every row the writes make, without generated ids and clock readings: comparable across stores."""
    with store.sessions() as session:
        tags = dict(session.execute(select(Hashtag.id, Hashtag.name)).all())
        return {
            "videos": sorted(
                (v.id, v.parent_id, v.depth, v.source, v.desc, v.author_id, v.expand_status, v.expand_method)
                for v in session.scalars(select(Video))
            ),
            "authors": sorted((a.id, a.unique_id, a.follower_count) for a in session.scalars(select(Author))),
            "hashtags": sorted((h.name, h.tiktok_id) for h in session.scalars(select(Hashtag))),
            "links": sorted((link.video_id, tags[link.hashtag_id]) for link in session.scalars(select(VideoHashtag))),
            "snapshots": sorted((s.video_id, s.play_count, s.source) for s in session.scalars(select(StatsSnapshot))),
            "edges": sorted((e.parent_id, e.child_id, e.rank) for e in session.scalars(select(RelatedEdge))),
        }


def test_a_batch_of_expansions_writes_what_they_write_one_by_one(any_store, tmp_path):
    """The crawl writes several expansions per transaction; the tables must not tell the difference."""
    one_by_one = open_store(Settings(data_dir=tmp_path / "one-by-one"))
    try:
        for target in (one_by_one, any_store):
            record_seeds(target, listing(1, 2, 3), seeds=3, max_videos=7, run_id=None, seed=0)
            assert claim_parents(target, "bfs", worker_name(target, "t"), 3) == ["1", "2", "3"]
        expected = [
            record_expansion(
                one_by_one, e.parent_id, e.related, method=e.method, fanout=2, max_videos=7, run_id=None, seed=0
            )
            for e in _batch_scenario()
        ]
        batched = record_expansions(any_store, _batch_scenario(), fanout=2, max_videos=7, run_id=None, seed=0)
        assert batched == expected
        assert [s.new for s in batched] == [("10", "11"), ("12",), ("13",)]  # the target of 7 ran out
        assert _table_dump(any_store) == _table_dump(one_by_one)
    finally:
        one_by_one.dispose()


def test_failed_expansion_transaction_leaves_nothing_behind(any_store):
    record_seeds(any_store, listing(1), seeds=1, max_videos=10, run_id=None, seed=0)
    [parent] = claim_parents(any_store, "random", worker_name(any_store, "t"), draw=Random(0))
    related = ItemList((parse_item(item(30)), parse_item(item(31))))
    with any_store.engine.begin() as connection:  # the edges are written after the videos: refuse them
        if any_store.dialect == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_edges BEFORE INSERT ON related_edges "
                "BEGIN SELECT RAISE(ABORT, 'killed mid-expansion'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_edge() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'killed mid-expansion'; END $$ LANGUAGE plpgsql"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_edges BEFORE INSERT ON related_edges FOR EACH ROW EXECUTE FUNCTION refuse_edge()"
            )
    with pytest.raises(DBAPIError):
        record_expansion(any_store, parent, related, method="page", fanout=5, max_videos=10, run_id=None, seed=0)
    assert count(any_store, Video) == 1 and count(any_store, RelatedEdge) == 0
    with any_store.sessions() as session:
        parent_row = session.get(Video, "1")
    assert parent_row.expand_status == "claimed" and parent_row.expand_method is None


def test_ads_and_photos_of_a_for_you_batch_take_no_seed_place(any_store):
    """``--seeds`` counts videos, but every new item took a place: a batch opening with an ad and a photo
    post filled two places and dropped the videos after them, batch after batch."""
    batch = ItemList(
        (
            parse_item(item(900, isAd=True)),
            parse_item(item(800, imagePost={"images": [{"imageURL": {"urlList": ["https://cdn.example/p.jpg"]}}]})),
            *(parse_item(item(video_id)) for video_id in (1, 2, 3)),
        )
    )
    assert [record.kind for record in batch.items[:2]] == ["ad", "photo"]

    sighting = record_seeds(any_store, batch, seeds=2, max_videos=10, run_id=None, seed=0)

    assert sighting.new == ("900", "800", "1", "2") and seed_count(any_store) == 2


def test_photos_and_private_posts_of_a_related_list_take_no_fanout_place(any_store):
    """``--fanout`` counts videos, as ``--seeds`` does: a related list opening with a photo post and a
    private one added three videos of fanout 5, and dropped the videos after them."""
    record_seeds(any_store, listing(1), seeds=1, max_videos=100, run_id=None, seed=0)
    worker = worker_name(any_store, "t")
    [parent] = claim_parents(any_store, "bfs", worker)
    related = ItemList(
        (
            parse_item(item(800, imagePost={"images": [{}]})),
            parse_item(item(801, privateItem=True)),
            *(parse_item(item(video_id)) for video_id in range(10, 20)),
        )
    )

    [sighting] = record_expansions(
        any_store, [Expansion(parent, related, "fetch")], fanout=5, max_videos=100, run_id=None, seed=0, worker=worker
    )

    assert sighting is not None and sighting.new == ("800", "801", "10", "11", "12", "13", "14")
    assert corpus_video_count(any_store) == 6  # the parent and its five children


def test_a_crawler_whose_claim_lapsed_writes_nothing_over_its_new_holder(any_store):
    """A process suspended past its lease wakes with its parent's list: writing it expanded (or failed, or
    back to the frontier) cleared the claim of the worker now expanding it, and a third could take it."""
    record_seeds(any_store, listing(1), seeds=1, max_videos=10, run_id=None, seed=0)
    sleeper, holder = worker_name(any_store, "sleeper"), worker_name(any_store, "holder")
    long_ago = utcnow() - timedelta(hours=1)
    [parent] = claim_parents(any_store, "random", sleeper, now=long_ago, draw=Random(0))  # lease long gone
    assert claim_parents(any_store, "random", holder, draw=Random(0)) == [parent]
    expansion = Expansion(parent, listing(30, 31), "page")
    written = dict(fanout=5, max_videos=10, run_id=None, seed=0)

    assert record_expansions(any_store, [expansion], **written, worker=sleeper) == [None]
    assert not fail_parent(any_store, parent, "malformed_json", "late", worker=sleeper)
    late_retry = retry_parent(
        any_store, parent, "timeout", "late", max_attempts=3, retry_after_s=lambda n: 0, worker=sleeper
    )

    assert not late_retry and count(any_store, Video) == 1 and count(any_store, RelatedEdge) == 0
    with any_store.sessions() as session:
        row = session.get(Video, parent)
    assert (row.expand_status, row.expand_worker, row.expand_error_kind) == ("claimed", holder, None)
    [sighting] = record_expansions(any_store, [expansion], **written, worker=holder)
    assert sighting is not None and sighting.new == ("30", "31") and count(any_store, RelatedEdge) == 2


def test_the_sounds_original_flag_is_stored_and_a_sighting_without_it_keeps_it(any_store):
    """The flag a localised or retitled sound is only known by; a later list that omits it is no news."""
    flagged = item(41, music={"id": "5", "title": "Go follow zDeezee", "original": True})
    record_seeds(any_store, ItemList((parse_item(flagged),)), seeds=1, max_videos=10, run_id=None, seed=0)
    record_seeds(any_store, listing(41), seeds=1, max_videos=10, run_id=None, seed=0)

    with any_store.sessions() as session:
        video = session.get(Video, "41")
        assert (video.music_title, video.music_original) == ("Go follow zDeezee", True)


def test_texts_longer_than_their_columns_are_dropped_so_the_list_is_stored(any_store):
    """Postgres refuses a text longer than its column, failing the whole list's write (on every rerun):
    an id that is no id, an over-long codec or hashtag name is unknown instead."""
    hostile = item(
        40,
        author={"id": "9" * 40, "uniqueId": "u40"},
        music={"id": "8" * 40, "title": "a sound"},
        video={"playAddr": "https://cdn.example/40.mp4", "duration": 10, "codecType": "h" * (CODEC_CHARS + 1)},
        textExtra=[
            {"type": 1, "hashtagName": "x" * (HASHTAG_CHARS + 1), "hashtagId": "1"},
            {"type": 1, "hashtagName": "fine", "hashtagId": "7" * (ID_CHARS + 1)},
        ],
    )

    record_seeds(any_store, ItemList((parse_item(hostile),)), seeds=1, max_videos=10, run_id=None, seed=0)

    with any_store.sessions() as session:
        video = session.get(Video, "40")
        assert (video.author_id, video.music_id, video.codec) == (None, None, None)
        assert session.execute(select(Hashtag.name, Hashtag.tiktok_id)).all() == [("fine", None)]
    bounds = [  # pairs, not a dict: several bounds are 32, and a dict kept only the last of them
        (ID_CHARS, (Video.__table__.c.id, Video.__table__.c.music_id, Hashtag.__table__.c.tiktok_id)),
        (CODEC_CHARS, (Video.__table__.c.codec,)),
        (HASHTAG_CHARS, (Hashtag.__table__.c.name,)),
        (URL_KIND_CHARS, (MediaFile.__table__.c.source_url_kind, DownloadAttempt.__table__.c.url_kind)),
    ]
    for chars, held in bounds:
        assert {column.type.length for column in held} == {chars}, held


def test_a_nul_in_a_caption_or_a_name_is_stored_as_a_replacement_and_the_list_with_it(any_store):
    """Postgres refuses NUL in text, and with it the whole batch of rows; JSON can carry one escaped."""
    body = orjson.dumps(
        {"statusCode": 0, "itemList": [item(41), item(42, desc="a \x00 b", author={"id": "942", "nickname": "B\x00b"})]}
    ).decode()
    assert "\\u0000" in body

    record_seeds(any_store, parse_item_list(body), seeds=2, max_videos=10, run_id=None, seed=0)

    with any_store.sessions() as session:
        assert session.get(Video, "41") is not None
        assert session.get(Video, "42").desc == "a \ufffd b"
        assert session.get(Author, "942").nickname == "B\ufffdb"


def test_the_random_frontier_draws_its_parents_uniformly_not_the_newest_first(any_store):
    """The paper's method expands "a random not-yet-expanded video". Taking the smallest of keys fixed at
    insertion was no such draw in a growing frontier: the rows left waiting were those whose keys lost,
    each new child beat them, and the crawl went depth first (mean depth of the expanded parents 25 at
    2,000 videos, where a uniform draw gives about 5). Fanout 5 from 25 seeds on an endless graph, to 600
    videos."""
    fresh = itertools.count(7_000_000_000_000_000_000)
    record_seeds(any_store, listing(*(next(fresh) for _ in range(25))), seeds=25, max_videos=600, run_id=None, seed=0)
    draw, worker = Random(0), worker_name(any_store, "t")
    while parents := claim_parents(any_store, "random", worker, 4, draw=draw):
        expansions = [Expansion(p, listing(*(next(fresh) for _ in range(8))), "fetch") for p in parents]
        record_expansions(any_store, expansions, fanout=5, max_videos=600, run_id=None, seed=0, worker=worker)
        if corpus_video_count(any_store) >= 600:
            break
    with any_store.sessions() as session:
        depths = session.scalars(select(Video.depth).where(Video.expand_status == "expanded")).all()
    assert sum(depths) / len(depths) < 6, sorted(depths)  # measured: 2.6 drawn, 9.4 by the fixed keys


def test_a_parent_that_keeps_failing_retryably_goes_back_until_its_claims_run_out(any_store):
    """A block or a timeout is about the moment: the parent returns to the frontier, its error noted,
    until its claims reach the cap; then it is failed, so no parent is claimed forever."""
    record_seeds(any_store, listing(1), seeds=1, max_videos=10, run_id=None, seed=0)
    went_back = []
    for _ in range(3):
        assert claim_parents(any_store, "random", worker_name(any_store, "t"), draw=Random(0)) == ["1"]
        went_back.append(retry_parent(any_store, "1", "http_5xx", "HTTP 503", max_attempts=3, retry_after_s=no_wait))
    assert went_back == [True, True, False]
    with any_store.sessions() as session:
        parent = session.get(Video, "1")
    assert (parent.expand_status, parent.expand_attempts, parent.expand_error_kind) == ("failed", 3, "http_5xx")
    assert parent.expand_lease_until is None
    assert claim_parents(any_store, "random", worker_name(any_store, "t"), draw=Random(0)) == []


def no_wait(attempts: int) -> float:
    return 0.0


def test_a_parent_that_failed_waits_out_its_backoff_before_the_next_claim(any_store):
    """An outage or a block lasts: a parent claimed again at once would use up its claims in minutes.
    While it waits the frontier is not empty (the crawl waits for it), and it is claimable after."""
    record_seeds(any_store, listing(1), seeds=1, max_videos=10, run_id=None, seed=0)
    assert claim_parents(any_store, "random", worker_name(any_store, "t"), draw=Random(0)) == ["1"]
    asked = []

    def ten_minutes(attempts: int) -> float:
        asked.append(attempts)
        return 600.0

    assert retry_parent(any_store, "1", "timeout", "no answer", max_attempts=3, retry_after_s=ten_minutes)
    assert asked == [1], "the backoff is asked for the claims so far"
    assert claim_parents(any_store, "random", worker_name(any_store, "t"), draw=Random(0)) == []
    assert frontier_state(any_store) == (0, 1), "nothing to claim now, one parent to wait for"
    later = utcnow() + timedelta(seconds=601)
    assert claim_parents(any_store, "random", worker_name(any_store, "t"), now=later, draw=Random(0)) == ["1"]


def test_the_backoff_doubles_with_each_failed_claim_up_to_its_maximum():
    policy = BlockPolicy(parent_retry_after_s=60, parent_retry_max_s=3600)
    assert [policy.parent_retry_after(n) for n in (1, 2, 3, 7, 10_000)] == [60, 120, 240, 3600, 3600]


def test_retry_failed_gives_failed_parents_back_with_their_claims_counted_afresh(any_store):
    record_seeds(any_store, listing(1, 2), seeds=2, max_videos=10, run_id=None, seed=0)
    assert sorted(claim_parents(any_store, "bfs", worker_name(any_store, "t"), 2)) == ["1", "2"]
    retry_parent(any_store, "1", "http_5xx", "HTTP 503", max_attempts=1, retry_after_s=no_wait)
    record_expansion(any_store, "2", listing(3), method="fetch", fanout=5, max_videos=10, run_id=None, seed=0)
    assert frontier_state(any_store) == (1, 0)  # 3; 1 failed
    assert retry_failed_parents(any_store) == 1
    with any_store.sessions() as session:
        parent = session.get(Video, "1")
    assert (parent.expand_status, parent.expand_attempts, parent.expand_not_before) == ("pending", 0, None)
    assert sorted(claim_parents(any_store, "bfs", worker_name(any_store, "t"), 5)) == ["1", "3"]


def stages(store, video_id: str) -> tuple:
    with store.sessions() as session:
        row = session.get(Video, video_id)
    return (
        row.item_kind,
        (row.expand_status, row.expand_error_kind),
        (row.download_status, row.download_error_kind),
        (row.probe_status, row.probe_error_kind),
    )


def test_a_resighting_that_changes_the_kind_moves_the_stages_that_have_not_begun(any_store):
    """A queued video that turns private leaves the frontier (else the crawl waits for a parent no claim
    can take, forever); an ad seen later as a plain video is expanded and downloaded like one."""
    ad = parse_item(item(2, isAd=True))
    record_seeds(any_store, ItemList((parse_item(item(1)), ad)), seeds=2, max_videos=10, run_id=None, seed=0)
    assert claim_parents(any_store, "random", worker_name(any_store, "t"), draw=Random(0)) == ["1"]
    record_expansion(any_store, "1", listing(3, 2), method="fetch", fanout=5, max_videos=10, run_id=None, seed=0)
    assert stages(any_store, "2") == ("video", ("pending", None), ("pending", None), ("pending", None))
    turned_private = ItemList((parse_item(item(3, privateItem=True)),))
    record_seeds(any_store, turned_private, seeds=2, max_videos=10, run_id=None, seed=0)  # any list re-sights it
    private = ("private", ("skipped", "private"), ("skipped", "private"), ("skipped", "private"))
    assert stages(any_store, "3") == private
    assert frontier_state(any_store) == (1, 0) and corpus_video_count(any_store) == 2
    assert claim_parents(any_store, "random", worker_name(any_store, "t"), 5, draw=Random(0)) == ["2"]
    assert frontier_state(any_store) == (0, 1)


def test_a_video_first_seen_without_file_urls_is_downloaded_once_a_sighting_has_them(any_store):
    """Its download was skipped for good: only a change of kind moved a stage, and ``--retry-failed``
    takes no skipped row. A video private for a while, then seen again without URLs, has its stored ones."""
    bare = {"playAddr": "", "duration": 10}
    record_seeds(any_store, ItemList((parse_item(item(1, video=bare)),)), seeds=2, max_videos=10, run_id=None, seed=0)
    no_file = ("video", ("pending", None), ("skipped", "no_media_urls"), ("skipped", "no_media_urls"))
    assert stages(any_store, "1") == no_file
    record_seeds(any_store, listing(1), seeds=2, max_videos=10, run_id=None, seed=0)
    assert stages(any_store, "1") == ("video", ("pending", None), ("pending", None), ("pending", None))

    record_seeds(any_store, listing(2), seeds=2, max_videos=10, run_id=None, seed=0)
    for sighting in (item(2, privateItem=True), item(2, video=bare)):
        record_seeds(any_store, ItemList((parse_item(sighting),)), seeds=2, max_videos=10, run_id=None, seed=0)
    assert stages(any_store, "2") == ("video", ("pending", None), ("pending", None), ("pending", None))


@pytest.mark.postgres
@pytest.mark.parametrize("writer", ["seeds", "expansion"])
def test_a_list_locks_the_videos_it_re_sights_in_id_order(pg_url, tmp_path, writer):
    """A download landing its files locks their rows in id order. A list re-sighting them in its own order
    (2, then 1), or an expansion locking its parent 2 before re-sighting 1, held 2 while waiting for 1,
    and Postgres killed one of the two: deadlock detected."""
    import threading

    from sqlalchemy import create_engine, text

    from tiktok_corpus.store.db import upgrade_database

    settings = Settings(db_url=pg_url, data_dir=tmp_path)
    upgrade_database(settings)
    store = open_store(settings)
    other = create_engine(pg_url)
    options = {"max_videos": 10, "run_id": None, "seed": 0}
    try:
        record_seeds(store, listing(1, 2), seeds=2, **options)
        if writer == "seeds":
            write = threading.Thread(target=record_seeds, args=(store, listing(2, 1)), kwargs={"seeds": 2, **options})
        else:
            worker = worker_name(store, "t")
            assert claim_parents(store, "bfs", worker, 2) == ["1", "2"]
            expansion = [Expansion("2", listing(1), "fetch")]
            write = threading.Thread(
                target=record_expansions, args=(store, expansion), kwargs={"fanout": 5, "worker": worker, **options}
            )
        with other.connect() as download:
            download.execute(select(Video.id).where(Video.id == "1").with_for_update())  # landing 1, then 2
            holder = download.execute(text("SELECT pg_backend_pid()")).scalar()
            write.start()
            blocked = text("SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))")
            with other.connect() as watch:
                wait_for(
                    lambda: watch.execute(blocked, {"holder": holder}).scalar() == 1, "the write waiting on video 1"
                )
            # The write waits for 1 without holding 2: the download takes it (NOWAIT: no lock held there).
            download.execute(select(Video.id).where(Video.id == "2").with_for_update(nowait=True))
            download.commit()
            write.join(60)
            assert not write.is_alive()
        assert count(store, StatsSnapshot) == 4 if writer == "seeds" else count(store, RelatedEdge) == 1
    finally:
        other.dispose()
        store.dispose()


def test_the_frontier_counts_only_the_rows_a_claim_can_take(any_store):
    """A pending parent that is no video (as an older version left a video turned private) is no
    frontier: a crawl that counted it would wait for it forever."""
    record_seeds(any_store, listing(1), seeds=1, max_videos=10, run_id=None, seed=0)
    with any_store.transaction() as session:
        session.execute(update(Video).where(Video.id == "1").values(item_kind="private"))
    assert claim_parents(any_store, "random", worker_name(any_store, "t"), draw=Random(0)) == []
    assert frontier_state(any_store) == (0, 0)


def test_a_stage_that_has_begun_keeps_its_status_whatever_the_kind(any_store):
    record_seeds(any_store, listing(1, 2), seeds=2, max_videos=10, run_id=None, seed=0)
    assert claim_parents(any_store, "bfs", worker_name(any_store, "t")) == ["1"]
    record_expansion(any_store, "1", listing(3), method="fetch", fanout=5, max_videos=10, run_id=None, seed=0)
    record_seeds(any_store, ItemList((parse_item(item(1, isAd=True)),)), seeds=2, max_videos=10, run_id=None, seed=0)
    assert stages(any_store, "1") == ("ad", ("expanded", None), ("skipped", "ad"), ("skipped", "ad"))


def test_a_kind_changed_within_one_batch_gives_the_new_row_the_stages_of_its_last_sighting(any_store):
    record_seeds(any_store, listing(1, 2), seeds=2, max_videos=10, run_id=None, seed=0)
    assert claim_parents(any_store, "bfs", worker_name(any_store, "t"), 2) == ["1", "2"]
    record_expansions(
        any_store,
        [
            Expansion("1", listing(3), "fetch"),
            Expansion("2", ItemList((parse_item(item(3, imagePost={"images": [{}]})),)), "fetch"),
        ],
        fanout=5,
        max_videos=10,
        run_id=None,
        seed=0,
    )
    assert stages(any_store, "3") == ("photo", ("skipped", "photo"), ("skipped", "photo"), ("skipped", "photo"))
    assert frontier_state(any_store) == (0, 0)


def test_seeds_count_for_you_videos_only(any_store):
    """--seeds N: N videos to expand from; the ads and photos of a For You batch are recorded, no seed."""
    batch = ItemList((parse_item(item(1, isAd=True)), parse_item(item(2, imagePost={"images": [{}]}))))
    record_seeds(any_store, batch, seeds=2, max_videos=10, run_id=None, seed=0)
    assert seed_count(any_store) == 0
    record_seeds(any_store, listing(3, 4, 5), seeds=2, max_videos=10, run_id=None, seed=0)
    assert seed_count(any_store) == 2 and corpus_video_count(any_store) == 2


def test_runs_left_running_by_a_killed_process_of_this_host_are_marked_killed(any_store, any_db_url, tmp_path):
    """A crawl killed with kill -9 never closes its row; the next crawl on its host does, and leaves
    live runs (this process's) and other hosts' runs alone."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tiktok_corpus.config import Settings; from tiktok_corpus.store.db import open_store; "
            "from tiktok_corpus.store.crawl_runs import start_run; "
            "start_run(open_store(Settings(db_url=sys.argv[1], data_dir=sys.argv[2])), {})",
            any_db_url,
            str(tmp_path),
        ],
        check=True,
    )
    live = start_run(any_store, {})
    with any_store.transaction() as session:
        session.add(CrawlRun(status="running", host="elsewhere", worker="elsewhere:1"))
    assert close_killed_runs(any_store) == 1
    with any_store.sessions() as session:
        runs = session.execute(select(CrawlRun.id, CrawlRun.status, CrawlRun.finished_at.is_not(None))).all()
    assert sorted(status for _, status, _ in runs) == ["killed", "running", "running"]
    assert all(finished == (status == "killed") for _, status, finished in runs)
    assert (live, "running", False) in runs
