"""The browse statements on SQLite and Postgres, and their plans: a video's page and the hashtag
filter look rows up through indexes, never by scanning the edges or the hashtag links."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event

from tiktok_corpus.config import Settings
from tiktok_corpus.store.browse import hashtag_video_ids, media_path, related_videos
from tiktok_corpus.store.db import open_store, upgrade
from tiktok_corpus.store.models import Hashtag, MediaFile, RelatedEdge, Video, VideoHashtag

# parent -> [(child, rank)]: "b" is listed by "a" and "c", and lists "d" and "a" (a cycle).
EDGES = {"a": [("b", 0)], "c": [("b", 1)], "b": [("d", 0), ("a", 2)]}


@pytest.fixture
def linked_store(any_db_url, tmp_path):
    store = open_store(Settings(data_dir=tmp_path / "data", db_url=any_db_url), check_schema=False)
    upgrade(store.engine)
    with store.transaction() as session:
        session.add_all([Video(id=video_id, item_kind="video") for video_id in "abcd"])
        session.add(Hashtag(id=1, name="Fun"))
        session.flush()
        session.add_all(
            RelatedEdge(parent_id=parent, child_id=child, rank=rank)
            for parent, children in EDGES.items()
            for child, rank in children
        )
        session.add_all([VideoHashtag(video_id="a", hashtag_id=1), VideoHashtag(video_id="d", hashtag_id=1)])
        session.add(MediaFile(video_id="a", path="videos/a.mp4", size_bytes=1, sha256="0" * 64))
    yield store
    store.dispose()


def test_related_videos_both_ways_the_hashtag_filter_and_the_media_path(linked_store):
    assert related_videos(linked_store, "b") == {"parents": [("a", 0), ("c", 1)], "children": [("d", 0), ("a", 2)]}
    assert related_videos(linked_store, "a") == {"parents": [("b", 2)], "children": [("b", 0)]}
    assert related_videos(linked_store, "nope") == {"parents": [], "children": []}
    assert hashtag_video_ids(linked_store, "#fun") == {"a", "d"}
    assert (media_path(linked_store, "a"), media_path(linked_store, "b")) == ("videos/a.mp4", None)


@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)  # Postgres seq-scans a table this small
def test_a_video_page_and_the_hashtag_filter_scan_no_table_of_links(linked_store):
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("SELECT"):  # not the store's BEGIN IMMEDIATE
            statements.append((statement, parameters))

    event.listen(linked_store.engine, "before_cursor_execute", record)
    related_videos(linked_store, "b")
    hashtag_video_ids(linked_store, "fun")
    event.remove(linked_store.engine, "before_cursor_execute", record)

    with linked_store.engine.connect() as conn:
        plans = [
            row.detail
            for statement, parameters in statements
            for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    assert not [step for step in plans if step.startswith(("SCAN related_edges", "SCAN video_hashtags"))], plans
    assert "SEARCH related_edges USING INDEX ix_related_edges_child (child_id=?)" in plans
    assert "SEARCH video_hashtags USING INDEX ix_video_hashtags_hashtag (hashtag_id=?)" in plans


@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)  # Postgres readers never wait on a writer
def test_browse_reads_neither_wait_for_a_writer_nor_hold_one_off(linked_store, tmp_path):
    """`corpus browse` and `corpus status` open the store for reads only: a crawl's transaction holding
    SQLite's write lock does not hold up a page (BEGIN IMMEDIATE waited its busy timeout, then failed)."""
    settings = Settings(data_dir=tmp_path / "data", db_url=linked_store.engine.url.render_as_string())
    writer = sqlite3.connect(linked_store.engine.url.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a crawl's expansion being written
    try:
        with open_store(settings, create=False, reads_only=True) as reader, ThreadPoolExecutor(1) as pool:
            page = pool.submit(related_videos, reader, "b")
            assert page.result(timeout=10) == {"parents": [("a", 0), ("c", 1)], "children": [("d", 0), ("a", 2)]}
    finally:
        writer.rollback()
        writer.close()


def test_hostile_ids_and_filters_are_no_video_and_a_bad_query_not_server_errors(linked_store, tmp_path):
    """A NUL in a video's URL or a filter: Postgres refuses the character in a query, so it must never
    get that far. Ids are digits (the crawl stores no other), and a filter holding NUL is a bad query."""
    from starlette.testclient import TestClient

    from tiktok_corpus.browse.app import browse_app
    from tiktok_corpus.browse.catalog import Catalog

    settings = Settings(data_dir=tmp_path / "data", db_url=linked_store.engine.url.render_as_string(False))
    app = browse_app(settings, linked_store, Catalog(linked_store), host="127.0.0.1")
    with TestClient(app, base_url="http://127.0.0.1:8765", raise_server_exceptions=False) as client:
        for path in ("/video/%00", "/media/%00", "/poster/%00.jpg", "/video/a%00b"):
            assert client.get(path).status_code == 404, path
        for query in ("hashtag=%00", "author=x%00"):
            answer = client.get(f"/?{query}")
            assert answer.status_code == 400 and "NUL" in answer.text, query
        assert client.get("/?hashtag=fun").status_code == 200


@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)
def test_browse_listens_on_an_ipv6_address_when_asked(linked_store, tmp_path):
    """``--host ::1`` binds an IPv6 socket (it was always IPv4) and says its address in brackets."""
    import httpx

    from tiktok_corpus.browse.app import BrowseServer
    from tiktok_corpus.browse.catalog import Catalog

    settings = Settings(data_dir=tmp_path / "data", db_url=linked_store.engine.url.render_as_string(False))
    with BrowseServer(settings, linked_store, Catalog(linked_store), host="::1", port=0) as server:
        assert server.base_url.startswith("http://[::1]:")
        assert httpx.get(f"{server.base_url}/queue").status_code == 200
