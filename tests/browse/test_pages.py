"""The pages' HTML without a server: the snapshot chart, a video's times and its observations."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd

from tiktok_corpus.browse.pages import snapshot_chart, video_page
from tiktok_corpus.store.browse import author_snapshots, related_videos, video_detail, video_snapshots
from tiktok_corpus.store.models import StatsSnapshot, Video


def test_a_missing_count_leaves_a_gap_in_its_line_not_a_drop_to_zero():
    snapshots = pd.DataFrame(
        {
            "captured_at": pd.to_datetime(["2024-05-01", "2024-05-02", "2024-05-03"], utc=True),
            "play_count": pd.array([10, None, 1000], dtype="Int64"),
            "like_count": pd.array([1, -1, 3], dtype="Int64"),  # -1: a count the site did not know
            "comment_count": pd.array([None, None, None], dtype="Int64"),
            "share_count": pd.array([0, 0, 0], dtype="Int64"),
        }
    )

    chart = snapshot_chart(snapshots)

    lines = {title: points.split() for points, title in re.findall(r'points="([^"]*)"><title>(\w+)</title>', chart)}
    assert set(lines) == {"play_count", "like_count", "share_count"}  # no line for a count never known
    assert len(lines["like_count"]) == 2 and "inf" not in chart
    assert len(lines["play_count"]) == 2  # the day without a count is skipped
    zero = f",{220 - 20:.1f}"  # where a count of 0 is drawn (the default height, less the margin)
    assert all(point.endswith(zero) for point in lines["share_count"])
    assert not any(point.endswith(zero) for point in lines["play_count"])


def test_a_count_never_usable_draws_no_line_and_leaves_the_others_drawn():
    """Plays only ever -1: their maximum was NaN, which took the chart's scale and every line with it."""
    snapshots = pd.DataFrame(
        {
            "captured_at": pd.to_datetime(["2024-05-01", "2024-05-02"], utc=True),
            "play_count": pd.array([-1, -1], dtype="Int64"),
            "like_count": pd.array([1, 3], dtype="Int64"),
            "comment_count": pd.array([0, 2], dtype="Int64"),
            "share_count": pd.array([None, None], dtype="Int64"),
        }
    )
    chart = snapshot_chart(snapshots)
    lines = {title: points.split() for points, title in re.findall(r'points="([^"]*)"><title>(\w+)</title>', chart)}
    assert set(lines) == {"like_count", "comment_count"} and "nan" not in chart
    assert all(len(points) == 2 for points in lines.values())


def test_a_video_page_says_each_times_clock_and_shows_a_moment_seen_in_several_lists_once(store):
    """The replica's clock runs ahead of ours (posted and snapshots on the site's, first seen on ours);
    one crawl moment's lists each keep a sighting with the same counts: the rows stay, the page counts them."""
    t0, t1 = datetime(2026, 11, 6, 21, 20, tzinfo=UTC), datetime(2026, 11, 7, 2, 12, tzinfo=UTC)
    sightings = [  # (moment, clock, plays, source)
        (t0, "site", 10, "related"),
        (t0, "site", 10, "foryou"),
        (t0, "site", 10, "related"),
        (t0, "site", 12, "related"),  # another count at that moment: an observation of its own
        (t1, "local", None, "track"),
    ]
    with store.transaction() as session:
        session.add(
            Video(id="7", item_kind="video", create_time=1793963987, first_seen_at=datetime(2026, 12, 5, 21, 28))
        )
        session.flush()
        session.add_all(
            StatsSnapshot(video_id="7", captured_at=at, clock=clock, play_count=plays, like_count=1, source=source)
            for at, clock, plays, source in sightings
        )
    snapshots = video_snapshots(store, "7")

    page = video_page(
        video_detail(store, "7"),
        None,
        snapshots,
        author_snapshots(store, "7"),
        related_videos(store, "7"),
        pd.DataFrame(),
    )

    assert len(snapshots) == 5  # the database keeps every sighting
    facts = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", page))
    assert facts["posted (site clock)"] == "2026-11-06 11:19 UTC"
    assert facts["first seen (local clock)"] == "2026-12-05 21:28 UTC"
    table = re.search(r'<table[^>]*class="dataframe snapshots">(.*?)</table>', page, re.DOTALL)
    assert table is not None
    header = re.findall(r"<th>([^<]*)</th>", table.group(1))
    cells = [re.findall(r"<td>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.DOTALL)]
    rows = [dict(zip(header, row)) for row in cells if row]
    assert [(r["captured_at"][:16], r["play_count"], r["clock"], r["sightings"], r["sources"]) for r in rows] == [
        ("2026-11-06 21:20", "10.0", "site", "3", "foryou, related"),
        ("2026-11-06 21:20", "12.0", "site", "1", "related"),
        ("2026-11-07 02:12", "-", "local", "1", "track"),
    ]
    assert "5 snapshots" in page  # the chart still draws every sighting


def test_a_posting_time_no_calendar_holds_is_shown_as_stored_not_a_server_error(store):
    """Corpora of older versions may hold a millisecond or overflowing createTime (the parser now refuses them)."""
    with store.transaction() as session:
        session.add(Video(id="8", item_kind="video", create_time=2**62, first_seen_at=datetime(2026, 12, 5, 21, 28)))
    page = video_page(
        video_detail(store, "8"),
        None,
        video_snapshots(store, "8"),
        author_snapshots(store, "8"),
        related_videos(store, "8"),
        pd.DataFrame(),
    )
    facts = dict(re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td></tr>", page))
    assert facts["posted (site clock)"] == f"{2**62} (unix seconds, out of range)"
