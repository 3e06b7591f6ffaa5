"""Labels at a fixed age (``corpus export --at-age``) on a hand-made snapshot table.

Every expected count is worked out by hand from the rule of docs/labels.md: between the nearest
snapshots before (age a0, count c0) and after (a1, c1) the age A, ``log1p`` of the count is linear in
age, so the count is ``(1 + c0) ** (1 - w) * (1 + c1) ** w - 1`` with ``w = (A - a0) / (a1 - a0)``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tiktok_corpus.cli import app
from tiktok_corpus.config import Settings
from tiktok_corpus.durations import format_duration, parse_duration
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.export import (
    ExportError,
    ExportOptions,
    apply_labels,
    fit_labels,
    run_export,
)
from tiktok_corpus.export.at_age import counts_at_age, early_growth
from tiktok_corpus.store.db import open_store, upgrade
from tiktok_corpus.store.models import Author, AuthorSnapshot, StatsSnapshot, TrackTarget

from .conftest import T0, _media, _video, populate_corpus

HOUR, DAY = 3_600, 86_400
CREATED = int((T0 - timedelta(days=60)).timestamp())
COUNTS = ("play_count", "like_count", "comment_count", "share_count", "collect_count")


def _snap(video_id: str, age_s: int, plays, likes=0, comments=0, shares=0, collects=0, created=CREATED):
    return StatsSnapshot(
        video_id=video_id,
        captured_at=pd.Timestamp(created + age_s, unit="s", tz="UTC").to_pydatetime(),
        play_count=plays,
        like_count=likes,
        comment_count=comments,
        share_count=shares,
        collect_count=collects,
    )


# video id -> (create_time, [(age in seconds, plays, likes, comments, shares, collects)]), in insertion order
TABLE: dict[str, tuple[int | None, list[tuple]]] = {
    # Bracketed 6d / 8d, w = 1/2; a far older and a far younger snapshot that must not be used.
    "3001": (CREATED, [(1 * DAY, 0, 0, 0, 0, 0), (6 * DAY, 99, 9, 0, 1, 3), (8 * DAY, 9999, 99, 8, 1, None)]),
    # Bracketed 6d / 10d, w = 1/4 (inserted out of age order on purpose).
    "3002": (CREATED, [(10 * DAY, 80, 15, 624, 0, 0), (6 * DAY, 0, 0, 0, 0, 0), (30 * DAY, 10**6, 10**6, 10**6, 0, 0)]),
    # A snapshot exactly at 7d: used as is.
    "3003": (
        CREATED,
        [(3 * DAY, 5, 5, 5, 5, 5), (7 * DAY, 12345, 678, 90, 12, 3), (12 * DAY, 10**5, 10**4, 10**3, 100, 10)],
    ),
    # Only younger snapshots, the last 12h before 7d: within the 1d tolerance.
    "3004": (CREATED, [(2 * DAY, 1, 1, 1, 1, 1), (6 * DAY + 12 * HOUR, 500, 50, 5, 2, 1)]),
    # First seen 20h after 7d: within the tolerance.
    "3005": (CREATED, [(7 * DAY + 20 * HOUR, 7000, 700, 70, 7, 0), (9 * DAY, 9000, 900, 90, 9, 0)]),
    # Last seen at 5d: too young (2d short of 7d).
    "3006": (CREATED, [(1 * DAY, 10, 1, 0, 0, 0), (5 * DAY, 300, 30, 3, 0, 0)]),
    # First seen at 9d: too old at first sighting.
    "3007": (CREATED, [(9 * DAY, 4000, 400, 40, 4, 0)]),
    # No snapshot at all.
    "3008": (CREATED, []),
    # No create time.
    "3009": (None, [(7 * DAY, 1, 1, 1, 1, 1)]),
}
EXPECTED_7D = {
    "3001": (np.sqrt(100 * 10_000) - 1, np.sqrt(10 * 100) - 1, np.sqrt(1 * 9) - 1, 1.0, None),  # 999, 30.62.., 2, 1
    "3002": (81**0.25 - 1, 16**0.25 - 1, 625**0.25 - 1, 0.0, 0.0),  # 2, 1, 4, 0, 0
    "3003": (12345, 678, 90, 12, 3),
    "3004": (500, 50, 5, 2, 1),
    "3005": (7000, 700, 70, 7, 0),
}


def populate_snapshot_table(store, data_dir) -> None:
    """TABLE as exportable videos, plus a video that is not exportable (its snapshots count nowhere)."""
    with store.transaction() as session:
        for video_id, (created, snapshots) in TABLE.items():
            session.add(_video(video_id, None, create_time=created))
            session.flush()
            session.add(_media(data_dir, video_id))
            for age, *counts in snapshots:
                session.add(_snap(video_id, age, *counts, created=created or CREATED))
        session.add(_video("3100", None, create_time=CREATED, probe_status="too_short"))
        session.flush()
        session.add(_media(data_dir, "3100", 40))
        session.add(_snap("3100", 9 * DAY, 1))


@pytest.fixture
def snapshot_table(store, settings) -> None:
    populate_snapshot_table(store, settings.data_dir)


def _export(settings: Settings, **options) -> tuple[dict, pd.DataFrame, Path]:
    path = run_export(settings, ExportOptions(**options))
    manifest = json.loads((path / "manifest.json").read_text())
    return manifest, pd.read_parquet(path / "videos.parquet").set_index("video_id"), path


def _assert_counts(rows: pd.DataFrame, expected: dict) -> None:
    assert sorted(rows.index) == sorted(expected)
    for video_id, counts in expected.items():
        got = rows.loc[video_id, list(COUNTS)].tolist()
        for metric, want, value in zip(COUNTS, counts, got):
            if want is None:
                assert pd.isna(value), (video_id, metric, value)
            else:
                assert value == pytest.approx(want, rel=1e-12, abs=1e-9), (video_id, metric, value, want)


def test_counts_are_interpolated_log_linearly_at_the_age(settings, store, snapshot_table):
    manifest, rows, path = _export(settings, at_age_s=7 * DAY, command_line=("corpus", "export", "--at-age", "7d"))

    _assert_counts(rows, EXPECTED_7D)
    assert rows.loc["3001", "play_count"] == pytest.approx(999.0)
    assert rows.loc["3003", "play_count"] == 12345.0  # exactly the snapshot's count, no round trip through logs
    # stats_captured_at is the moment the counts describe: posting + 7 days.
    expected_at = pd.Timestamp(CREATED + 7 * DAY, unit="s", tz="UTC")
    assert (rows["stats_captured_at"] == expected_at).all()

    assert manifest["age_basis"] == {  # at 7d the default tolerance is a day, as it always was
        "at_age_s": 7 * DAY,
        "tolerance_s": DAY,
        "at_age": "7d",
        "tolerance": "1d",
        "tolerance_rule": "default: a quarter of the age, at most 1d",
        "on_time_s": 7 * DAY // 100,
        "method": "log-linear between bracketing snapshots",
        "row_columns": ["age_basis", "snapshot_age_before_s", "snapshot_age_after_s"],
    }
    assert manifest["selection"]["rows_by_age_basis"] == {"exact": 1, "interpolated": 2, "within_tolerance": 2}
    # Each row says how it was placed and from the snapshots of which ages, so users can filter.
    placement = rows[["age_basis", "snapshot_age_before_s", "snapshot_age_after_s"]].astype(object)
    assert placement.where(placement.notna(), None).to_dict("index") == {
        "3001": {"age_basis": "interpolated", "snapshot_age_before_s": 6 * DAY, "snapshot_age_after_s": 8 * DAY},
        "3002": {"age_basis": "interpolated", "snapshot_age_before_s": 6 * DAY, "snapshot_age_after_s": 10 * DAY},
        "3003": {"age_basis": "exact", "snapshot_age_before_s": 7 * DAY, "snapshot_age_after_s": None},
        "3004": {"age_basis": "within_tolerance", "snapshot_age_before_s": 6.5 * DAY, "snapshot_age_after_s": None},
        "3005": {
            "age_basis": "within_tolerance",
            "snapshot_age_before_s": None,
            "snapshot_age_after_s": 7 * DAY + 20 * HOUR,
        },
    }
    assert manifest["selection"]["excluded_by_reason"] == {
        "no_snapshots": 1,
        "no_create_time": 1,
        "too_young": 1,
        "too_old_at_first_sighting": 1,
        "gone_before_age": 0,
    }
    assert manifest["selection"]["excluded_no_stats"] == 1
    assert manifest["options"]["at_age_s"] == 7 * DAY and manifest["options"]["age_tolerance_s"] is None
    card = (path / "README.md").read_text()
    assert "count at 7d after posting" in card and "too_old_at_first_sighting 1" in card

    # The paper's formulas, unchanged, on the interpolated counts, fitted on the train split and applied to
    # every row; the manifest reproduces them.
    train = rows[rows["split"] == "train"]
    _, params = fit_labels(train)
    assert manifest["label_params"] == {**params, "fitted_on": "train"} and params["fitted_rows"] == len(train) < len(
        rows
    )
    labels = apply_labels(rows, manifest["label_params"])
    assert rows["virality_score"].tolist() == labels["virality_score"].tolist()
    assert rows["is_viral"].tolist() == labels["is_viral"].tolist()


def test_a_video_the_tracker_found_gone_before_the_age_is_counted_apart(settings, store, snapshot_table):
    """3006, last seen at 5d, was then found deleted at 6d: not "not yet old enough when last seen" (it never
    became old enough), and deletions may follow a video's fate, so the manifest and the card count them
    apart. Found deleted at 30d, it was only not seen in time: too young. 3004, also gone since, was placed
    from its sighting within the tolerance, as before."""

    def found_gone(video_id: str, age: int) -> TrackTarget:
        # Its update time is this machine's clock, a month ahead of the site's: the site's age decides.
        wall = pd.Timestamp(CREATED + 30 * DAY + age, unit="s", tz="UTC").to_pydatetime()
        return TrackTarget(
            video_id=video_id,
            age_s=14 * DAY,
            due_at=CREATED + 14 * DAY,
            status="gone",
            observed_age_s=age,
            updated_at=wall,
        )

    with store.transaction() as session:
        session.add_all([found_gone("3006", 6 * DAY), found_gone("3004", 8 * DAY)])

    manifest, rows, path = _export(settings, at_age_s=7 * DAY)

    assert "3004" in rows.index and "3006" not in rows.index
    assert manifest["selection"]["excluded_by_reason"]["gone_before_age"] == 1
    assert manifest["selection"]["excluded_by_reason"]["too_young"] == 0
    card = (path / "README.md").read_text().replace("\n  ", " ")
    assert "gone_before_age 1" in card
    # 3004 stays in (dropping it would leave survivors), named for whoever must honour its removal.
    assert manifest["selection"]["found_gone"] == ["3004"]
    assert "The tracker found 1 of these videos deleted or made private since" in card
    assert _export(settings)[0]["selection"]["found_gone"] == ["3004", "3006"]  # by its latest counts, both in
    with store.transaction() as session:
        session.merge(found_gone("3006", 30 * DAY))
    late, _, _ = _export(settings, at_age_s=7 * DAY)
    assert late["selection"]["excluded_by_reason"]["gone_before_age"] == 0
    assert late["selection"]["excluded_by_reason"]["too_young"] == 1
    # Found gone after every snapshot: a plain export read that too, and its data cutoff says so.
    with store.transaction() as session:
        session.merge(found_gone("3006", 90 * DAY))
    cutoff = pd.Timestamp(_export(settings)[0]["selection"]["data_cutoff"])
    assert cutoff == pd.Timestamp(CREATED + 90 * DAY, unit="s", tz="UTC")


def test_an_hour_scale_age_interpolates_with_an_uneven_weight(settings, store, snapshot_table):
    # A video seen 1h and 1d after posting; at 6h, w = 5/23.
    with store.transaction() as session:
        session.add(_video("3200", None, create_time=CREATED))
        session.flush()
        session.add(_media(settings.data_dir, "3200"))
        session.add_all([_snap("3200", 1 * HOUR, 9, 3, 0, 0, 0), _snap("3200", 1 * DAY, 999, 63, 8, 2, 1)])

    _, rows, _ = _export(settings, at_age_s=6 * HOUR, age_tolerance_s=0)

    w = (6 - 1) / (24 - 1)
    expected = tuple((1 + c0) ** (1 - w) * (1 + c1) ** w - 1 for c0, c1 in ((9, 999), (3, 63), (0, 8), (0, 2), (0, 1)))
    _assert_counts(rows, {"3200": expected})


def test_the_tolerance_decides_which_lone_snapshots_count(settings, store, snapshot_table):
    strict, rows, path = _export(settings, at_age_s=7 * DAY, age_tolerance_s=0)
    assert sorted(rows.index) == ["3001", "3002", "3003"]
    # On time means within the tolerance too: the card said 1h40m48s (1% of 7d) of a 0s tolerance.
    assert strict["age_basis"]["on_time_s"] == 0
    assert "or on time for it (within 0s:" in " ".join((path / "README.md").read_text().split())
    assert strict["selection"]["excluded_by_reason"]["too_young"] == 2  # 3004, 3006
    assert strict["selection"]["excluded_by_reason"]["too_old_at_first_sighting"] == 2  # 3005, 3007

    loose, rows, _ = _export(settings, at_age_s=7 * DAY, age_tolerance_s=2 * DAY)
    _assert_counts(rows, {**EXPECTED_7D, "3006": (300, 30, 3, 0, 0), "3007": (4000, 400, 40, 4, 0)})
    assert loose["selection"]["rows_by_age_basis"] == {"exact": 1, "interpolated": 2, "within_tolerance": 4}
    assert loose["selection"]["excluded_by_reason"] == {
        "no_snapshots": 1,
        "no_create_time": 1,
        "too_young": 0,
        "too_old_at_first_sighting": 0,
        "gone_before_age": 0,
    }
    # A tolerance exactly as wide as the gap still counts (the bound is inclusive).
    _, rows, _ = _export(settings, at_age_s=7 * DAY, age_tolerance_s=20 * HOUR)
    assert "3005" in rows.index and "3004" in rows.index


def test_the_default_tolerance_is_a_quarter_of_a_short_age(settings, store):
    """At 1h a lone snapshot counts only within 15 min (not a day, which let most rows of a real corpus take
    counts from many hours later); a given --age-tolerance still wins. The author's profile is read at the
    posting, or at the first look within 1h after it (never after the label's age), whatever the tolerance."""
    # video -> (author, [(age, plays)]), author -> their snapshots' ages
    videos = {
        "3400": ("b1", [(HOUR + 10 * 60, 50)]),  # first seen 10 min late: within 15 min
        "3401": ("b1", [(HOUR + 20 * 60, 60), (DAY, 900)]),  # first seen 20 min late
        "3402": ("b2", [(40 * 60, 30)]),  # last seen 20 min early
        "3403": ("b3", [(30 * 60, 10), (2 * HOUR, 40)]),  # bracketed
    }
    authors = {"b1": [50 * 60], "b2": [], "b3": [HOUR + 20 * 60]}
    with store.transaction() as session:
        session.add_all([Author(id=author, follower_count=1) for author in authors])
        session.flush()
        for video_id, (author, snapshots) in videos.items():
            session.add(_video(video_id, author, create_time=CREATED))
            session.flush()
            session.add(_media(settings.data_dir, video_id))
            session.add_all([_snap(video_id, age, plays) for age, plays in snapshots])
        for author, ages in authors.items():
            session.add_all(
                [AuthorSnapshot(author_id=author, captured_at=_at(age), follower_count=age) for age in ages]
            )

    manifest, rows, path = _export(settings, at_age_s=HOUR)

    assert sorted(rows.index) == ["3400", "3403"]
    assert rows.loc["3400", ["age_basis", "snapshot_age_after_s"]].tolist() == ["within_tolerance", HOUR + 600]
    assert manifest["age_basis"]["tolerance_s"] == 15 * 60 and manifest["age_basis"]["tolerance"] == "15m"
    assert manifest["selection"]["excluded_by_reason"]["too_old_at_first_sighting"] == 1
    assert manifest["selection"]["excluded_by_reason"]["too_young"] == 1
    assert "within 15m of it (default: a quarter of the age, at most 1d)" in (path / "README.md").read_text().replace(
        "\n  ", " "
    )
    # The author's counts: 50 min after posting is the first look, 1h20m is not.
    assert rows["follower_count"].fillna(-1).tolist() == [50 * 60, -1]
    assert "at most 1h after it" in manifest["selection"]["author_counts"]["rule"]

    manifest, rows, _ = _export(settings, at_age_s=HOUR, age_tolerance_s=DAY)
    assert sorted(rows.index) == ["3400", "3401", "3402", "3403"]
    assert manifest["age_basis"]["tolerance_rule"] == "given (--age-tolerance)"
    assert rows["follower_count"].fillna(-1).tolist() == [50 * 60, 50 * 60, -1, -1]
    # At 30m, a profile seen at 50m is later than the row's own counts: unknown.
    manifest, rows, _ = _export(settings, at_age_s=30 * 60, age_tolerance_s=DAY)
    assert rows.loc["3400", "age_basis"] == "within_tolerance" and pd.isna(rows.loc["3400", "follower_count"])
    assert "at most 30m after it" in manifest["selection"]["author_counts"]["rule"]


def test_per_day_rates_at_a_fixed_age_divide_by_that_age(settings, store, snapshot_table):
    manifest, rows, _ = _export(settings, at_age_s=7 * DAY, normalize_age=True, label="continuous")

    rates = rows[list(COUNTS[:4])].astype("float64").fillna(0.0) / 7.0
    rates = rates.assign(create_time=0, stats_captured_at=pd.Timestamp(0, tz="UTC"))  # already per day
    _, params = fit_labels(rates[rows["split"] == "train"])
    labels = apply_labels(rates, params)
    assert rows["virality_score"].to_numpy() == pytest.approx(labels["virality_score"].to_numpy())
    assert manifest["label_params"]["normalize_age"] is True


def test_nothing_placeable_at_the_age_is_a_clear_error(settings, store, snapshot_table):
    with pytest.raises(ExportError, match="nothing to export.*age 60d.*too_young 7"):
        run_export(settings, ExportOptions(at_age_s=60 * DAY, age_tolerance_s=HOUR))


def test_without_at_age_the_labels_are_todays(settings, store, corpus):
    manifest, rows, _ = _export(settings, label="continuous", label_fit="all")

    # The latest snapshot of conftest's corpus, labelled by the paper's formulas directly (fitted, as the
    # paper did, on every exported row: --label-fit all).
    latest = pd.DataFrame(
        {
            "comment_count": [10 * (i % 5) for i in range(12)],
            "like_count": [100 * (i + 1) for i in range(12)],
            "play_count": [1000 * (i + 1) for i in range(12)],
            "share_count": [i % 3 for i in range(12)],
        },
        index=[str(1000 + i) for i in range(12)],
    )
    labels, params = fit_labels(latest)
    assert rows.loc[latest.index, "virality_score"].tolist() == labels["virality_score"].tolist()
    assert rows.loc[latest.index, "is_viral"].tolist() == labels["is_viral"].tolist()
    assert manifest["label_params"] == {**params, "fitted_on": "all"}
    assert str(rows["play_count"].dtype) == "int64"  # counts stay integers
    assert manifest["age_basis"] == "latest snapshot"
    assert "excluded_by_reason" not in manifest["selection"]
    assert manifest["options"]["at_age_s"] is None

    as_of = T0 - timedelta(hours=1)
    assert _export(settings, as_of=as_of)[0]["age_basis"] == f"as of {as_of.isoformat()}"


def _at(age_s: int):
    return pd.Timestamp(CREATED + age_s, unit="s", tz="UTC").to_pydatetime()


def test_the_authors_counts_are_those_of_the_posting_or_of_the_cutoff(settings, store):
    """Followers and the badge grow after a hit: an export at an age reads the author's counts at each
    row's posting (their latest snapshot by then, else the first look within 1h after it), since what
    they gained during the row's first days may be the row's own doing; an export as of a date reads them
    at that date. Never the profile's later ones; where there is none, they are unknown. A plain export
    keeps the profile's latest."""
    later = {"follower_count": 10**6, "following_count": 7, "heart_count": 10**8, "video_count": 70, "verified": True}
    # author -> [(age of the snapshot at the video's posting, followers, badge)]; each author has one video
    # with stats at 6d and 8d. a1 gains followers and the badge after posting; a2 is seen only after the
    # posting's first hour, its snapshot before the badge was kept (None); a4 first 40 min after posting.
    authors = {
        "a1": [(-1 * DAY, 100, False), (6 * DAY, 200, False), (8 * DAY, 5000, True)],
        "a2": [(7 * DAY + 12 * HOUR, 300, None)],
        "a3": [(30 * DAY, 9000, True)],
        "a4": [(40 * 60, 400, False), (6 * DAY, 4000, True)],
    }
    with store.transaction() as session:
        session.add_all([Author(id=author, **later) for author in authors])
        session.flush()
        for i, (author, snapshots) in enumerate(authors.items()):
            video_id = f"400{i + 1}"
            session.add(_video(video_id, author, create_time=CREATED))
            session.flush()
            session.add(_media(settings.data_dir, video_id))
            session.add_all([_snap(video_id, 6 * DAY, 100), _snap(video_id, 8 * DAY, 300)])
            for age, followers, verified in snapshots:
                session.add(
                    AuthorSnapshot(
                        author_id=author,
                        captured_at=_at(age),
                        follower_count=followers,
                        following_count=followers // 100,
                        heart_count=followers * 10,
                        video_count=3,
                        verified=verified,
                    )
                )

    manifest, rows, path = _export(settings, at_age_s=7 * DAY)
    assert "read from the author's snapshots, not the profile as last seen (2 rows; 2 left unknown" in (
        path / "README.md"
    ).read_text().replace("\n  ", " ")
    unknown = -1
    assert rows["follower_count"].fillna(unknown).tolist() == [100, unknown, unknown, 400]
    assert rows["following_count"].fillna(unknown).tolist() == [1, unknown, unknown, 4]
    assert rows["heart_count"].fillna(unknown).tolist() == [1000, unknown, unknown, 4000]
    assert rows["verified"].fillna(unknown).tolist() == [False, unknown, unknown, False]  # the badge then
    counts = manifest["selection"]["author_counts"]
    assert (counts["placed"], counts["unknown"], counts["verified_unknown"]) == (2, 2, 0)
    assert counts["rule"] == (
        "the author's latest snapshot at or before the row's posting, else their first one at most 1h after it "
        "(the first look at a new video); unknown otherwise"
    )
    _, rows, _ = _export(settings, at_age_s=7 * DAY, age_tolerance_s=2 * DAY)  # the age tolerance plays no part
    assert rows["follower_count"].fillna(unknown).tolist() == [100, unknown, unknown, 400]

    manifest, rows, _ = _export(settings, as_of=_at(7 * DAY))  # the 6d stats, and the authors' counts by 7d
    assert rows["follower_count"].fillna(unknown).tolist() == [200, unknown, unknown, 4000]
    counts = manifest["selection"]["author_counts"]
    assert counts["unknown"] == 2 and counts["rule"] == (
        "the author's latest snapshot at or before the stats moment; unknown otherwise"
    )
    manifest, rows, _ = _export(settings)
    assert rows["follower_count"].tolist() == [10**6] * 4 and rows["verified"].all()
    assert "author_counts" not in manifest["selection"]


def test_the_pure_interpolation_handles_ties_nulls_and_empty_input():
    created = 1_700_000_000
    videos = pd.DataFrame({"video_id": ["a", "b", "c"], "create_time": [created, created, pd.NA]})
    at = pd.Timestamp(created + DAY, unit="s", tz="UTC")
    snapshots = pd.DataFrame(
        {
            "video_id": ["a", "a", "b"],
            "captured_at": [at, at, at - pd.Timedelta(hours=2)],
            "play_count": [5, 6, 7],
            "like_count": [1, 2, None],
            "comment_count": [0, 0, 0],
            "share_count": [0, 0, 0],
            "collect_count": [0, 0, 0],
        }
    )

    out = counts_at_age(videos, snapshots, at_age_s=DAY, tolerance_s=HOUR)

    # Two snapshots at the very age: the one stored last wins, as it does for "latest snapshot".
    assert out.loc[0, "play_count"] == 6 and out.loc[0, "age_basis"] == "exact"
    assert (
        pd.isna(out.loc[1, "age_basis"]) and out.loc[1, "excluded"] == "too_young" and pd.isna(out.loc[1, "play_count"])
    )
    assert out.loc[2, "excluded"] == "no_snapshots"  # no snapshot beats no create time
    assert out["excluded"].isna().tolist() == [True, False, False]

    widened = counts_at_age(videos, snapshots, at_age_s=DAY, tolerance_s=2 * HOUR)
    assert widened.loc[1, "age_basis"] == "within_tolerance" and pd.isna(widened.loc[1, "like_count"])

    empty = counts_at_age(videos, snapshots.iloc[0:0], at_age_s=DAY, tolerance_s=HOUR)
    assert empty["excluded"].tolist() == ["no_snapshots"] * 3


def test_the_pure_interpolation_does_not_depend_on_the_snapshots_order():
    videos = pd.DataFrame({"video_id": list(TABLE), "create_time": [created for created, _ in TABLE.values()]})
    snapshots = pd.DataFrame(
        [
            (video_id, pd.Timestamp((created or CREATED) + age, unit="s", tz="UTC"), *counts)
            for video_id, (created, table) in TABLE.items()
            for age, *counts in table
        ],
        columns=["video_id", "captured_at", *COUNTS],
    )

    stored = counts_at_age(
        videos, snapshots.sort_values(["video_id", "captured_at"]), at_age_s=7 * DAY, tolerance_s=DAY
    )
    reversed_ = counts_at_age(videos, snapshots.iloc[::-1], at_age_s=7 * DAY, tolerance_s=DAY)

    pd.testing.assert_frame_equal(stored, reversed_)
    assert stored.loc[0, "play_count"] == pytest.approx(999.0) and stored.loc[1, "play_count"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "text, seconds",
    [("0", 0), ("90s", 90), ("15m", 900), ("1h", 3_600), ("6h", 21_600), ("1d", 86_400), ("7d", 604_800)]
    + [("2w", 1_209_600), ("1d12h", 129_600), (" 3d ", 259_200), ("0s", 0)],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text, "--at-age") == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7 d", "7D", "1.5d", "-1d", "7days", "1y", "d7", "1d 2h"])
def test_bad_durations_are_config_errors_naming_the_option(text):
    with pytest.raises(ConfigError, match="--age-tolerance .*expected a duration like"):
        parse_duration(text, "--age-tolerance")


@pytest.mark.parametrize("text", ["3651d", "99999999999999999999d", "522w"])
def test_a_duration_past_ten_years_is_refused_before_it_overflows_a_time(text):
    """--at-age 99999999999999999999d raised a traceback; --ages 99999999999999d stored track targets due in
    a billion years, pending for good."""
    with pytest.raises(ConfigError, match=r"--ages '.*': at most 3650d \(ten years\)"):
        parse_duration(text, "--ages")
    assert parse_duration("3650d", "--ages") == 3650 * 86_400


def test_durations_are_written_back_in_days_and_smaller():
    assert [format_duration(s) for s in (0, 90, 3_600, 86_400, 604_800, 129_600, 90_061)] == [
        "0s",
        "1m30s",
        "1h",
        "1d",
        "7d",
        "1d12h",
        "1d1h1m1s",
    ]
    assert all(parse_duration(format_duration(s), "--at-age") == s for s in (1, 59, 61, 3_599, 86_401, 10**7))


def test_an_export_at_an_age_as_of_a_moment_is_the_same_after_more_tracking(settings, store, snapshot_table):
    """Each export is a version of its own, but the same command run again after more `corpus track` gave
    other rows (3006, too young, now bracketed by a later sighting) and, the labels refitted, other labels:
    --as-of makes it the export of the corpus as it was then."""
    cutoff = T0 - timedelta(days=2)
    options = {"at_age_s": 7 * DAY, "label": "binary"}
    first, first_rows, first_path = _export(settings, **options, as_of=cutoff)
    with store.transaction() as session:  # a day later: 3006 seen again at 59 days, 3004 found deleted
        session.add(_snap("3006", 59 * DAY, 900_000, 9_000, 90, 9, 0))
        session.add(
            TrackTarget(
                video_id="3004",
                age_s=14 * DAY,
                due_at=CREATED + 14 * DAY,
                status="gone",
                observed_age_s=T0.timestamp() - CREATED,
                updated_at=T0,
            )
        )

    now, now_rows, _ = _export(settings, **options)
    again, again_rows, _ = _export(settings, **options, as_of=cutoff)

    assert "3006" in now_rows.index and "3006" not in first_rows.index  # without the cutoff: another export
    pd.testing.assert_frame_equal(again_rows, first_rows)
    assert again["selection"] == first["selection"] and again["label_params"] == first["label_params"]
    assert first["selection"]["as_of"] == first["selection"]["data_cutoff"] == cutoff.isoformat()
    card = " ".join((first_path / "README.md").read_text().split())
    assert (
        f"cut off at {cutoff.isoformat()} (given by --as-of); the same command with `--as-of {cutoff.isoformat()}`"
        in card
    )
    # which videos it holds is no snapshot's: a file downloaded after the export joins a rerun, as the card says
    assert "as long as no file of a video seen by then was downloaded or validated after this export" in card


def test_at_age_options_are_checked():
    with pytest.raises(ConfigError, match="--at-age must be a positive duration"):
        ExportOptions(at_age_s=0)
    with pytest.raises(ConfigError, match="--age-tolerance must not be negative"):
        ExportOptions(at_age_s=DAY, age_tolerance_s=-1)
    assert ExportOptions().at_age_s is None and ExportOptions().age_tolerance_s is None  # the age's default
    with pytest.raises(ConfigError, match="--age-tolerance needs --at-age"):
        ExportOptions(age_tolerance_s=HOUR)


def test_cli_at_age_end_to_end(settings, store, snapshot_table, monkeypatch):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "export"]
    args = [*base, "--labels", "binary", "--at-age", "7d", "--age-tolerance", "2d"]
    monkeypatch.setattr("sys.argv", ["corpus", *args])

    done = runner.invoke(app, args)

    assert done.exit_code == 0, done.output
    path = Path(done.stdout.strip().splitlines()[-1])
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["age_basis"]["at_age_s"] == 7 * DAY and manifest["age_basis"]["tolerance_s"] == 2 * DAY
    assert manifest["row_count"] == 7 and "--at-age 7d" in manifest["command_line"]
    assert "labels at age 7d; left out: 1 no snapshots, 1 no create time)" in done.stderr  # 3008, 3009
    rows = pd.read_parquet(path / "videos.parquet").set_index("video_id")
    assert rows.loc["3001", "play_count"] == pytest.approx(999.0)

    bad = runner.invoke(app, [*base, "--labels", "binary", "--at-age", "a week"])
    assert bad.exit_code == 1 and "--at-age 'a week'" in bad.stderr
    help_text = runner.invoke(app, ["export", "--help"]).stdout
    assert "--at-age" in help_text and "--age-tolerance" in help_text
    assert len(list((settings.data_dir / "exports").iterdir())) == 1


@pytest.mark.postgres
def test_at_age_from_postgres(pg_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "pg-data", db_url=pg_url)
    store = open_store(settings, check_schema=False)
    upgrade(store.engine)
    try:
        populate_snapshot_table(store, settings.data_dir)
        populate_corpus(store, settings.data_dir)  # videos whose snapshots are all a day from posting or more
        manifest, rows, _ = _export(settings, at_age_s=7 * DAY)
    finally:
        store.dispose()

    fixture_rows = {video_id: rows.loc[video_id] for video_id in EXPECTED_7D}
    _assert_counts(pd.DataFrame(fixture_rows).T, EXPECTED_7D)
    assert manifest["selection"]["rows_by_age_basis"]["interpolated"] >= 2
    assert manifest["selection"]["excluded_by_reason"]["no_snapshots"] == 2  # 3008, and conftest's 2005


def test_growth_features_give_plays_at_the_early_ages_and_the_growth_between(settings, store, snapshot_table):
    with store.transaction() as session:
        for video_id in ("3300", "3301", "3302", "3303"):
            session.add(_video(video_id, None, create_time=CREATED))
            session.flush()
            session.add(_media(settings.data_dir, video_id))
        session.add_all(
            [
                _snap("3300", 1 * HOUR, 7),  # exactly 1h
                _snap("3300", 3 * HOUR, 26),
                _snap("3300", 7 * HOUR, 3**7 - 1),  # 6h: w = 3/4 between 3h and 7h (within 6h's 1.5h)
                _snap("3300", 26 * HOUR, 216 * 128 - 1),  # 1d: w = 17/19 between 7h and 26h (within 6h of 1d)
                _snap("3300", 7 * DAY, 10**6),
                # 10 min after 1h: within 1h's tolerance of 15 min. 6h and 1d lie between the two sightings,
                # but the second comes after the label's 7d, so it is not known to these features.
                _snap("3301", 1 * HOUR + 10 * 60, 40),
                _snap("3301", 7 * DAY + HOUR, 5000),
                # First seen 7h after 1d: beyond 1d's tolerance of 6h (and 6h's 1.5h, 1h's 15 min).
                _snap("3302", 1 * DAY + 7 * HOUR, 900),
                _snap("3302", 7 * DAY, 5000),
                # First seen 5h after 1d: within 1d's tolerance, so its count is the 1d count as is.
                _snap("3303", 1 * DAY + 5 * HOUR, 800),
                _snap("3303", 7 * DAY, 5000),
            ]
        )

    manifest, rows, path = _export(settings, at_age_s=7 * DAY)

    assert "`play_count_at_1d` (3 rows)" in (path / "README.md").read_text()
    growth = ["play_count_at_1h", "play_count_at_6h", "play_count_at_1d", "play_growth_1h_6h", "play_growth_6h_1d"]
    assert list(rows.columns[-5:]) == growth and manifest["columns"][-5:] == growth
    p1, p6, p24 = 7.0, 27 ** (1 / 4) * 3 ** (7 * 3 / 4) - 1, 3 ** (7 * 2 / 19) * (216 * 128) ** (17 / 19) - 1
    assert p6 == pytest.approx(728.0)
    assert rows.loc["3300", growth].tolist() == pytest.approx(
        [p1, p6, p24, (np.log(729) - np.log(8)) / (5 / 24), (np.log1p(p24) - np.log(729)) / (18 / 24)]
    )
    assert rows.loc["3301", "play_count_at_1h"] == 40.0 and rows.loc["3301", growth[1:]].isna().all()
    assert rows.loc["3302", growth].isna().all()
    assert rows.loc["3303", "play_count_at_1d"] == 800.0 and rows.loc["3303", growth[:2]].isna().all()
    assert rows.loc["3001", "play_count_at_1d"] == 0.0  # 3001 was seen exactly 1d after posting
    assert manifest["growth_features"]["early_ages_s"] == {"1h": HOUR, "6h": 6 * HOUR, "1d": DAY}
    assert manifest["growth_features"]["non_null"] == {
        "play_count_at_1h": 2,
        "play_count_at_6h": 1,
        "play_count_at_1d": 3,
        "play_growth_1h_6h": 1,
        "play_growth_6h_1d": 1,
    }

    # Only the early ages below the label's age: at 6h, plays at 1h and nothing else.
    short, rows, _ = _export(settings, at_age_s=6 * HOUR, age_tolerance_s=0)
    assert list(rows.columns[-1:]) == ["play_count_at_1h"] and "play_count_at_6h" not in rows.columns
    assert short["growth_features"]["columns"] == ["play_count_at_1h"]


def test_the_early_counts_never_read_a_later_sighting():
    """Plays at an early age come from the sightings within that age's tolerance after it at most: two
    videos seen alike until then and apart only at the label's age get the same early counts (they once
    differed: the 6h and 1d counts were interpolated towards the label's own sighting), and a sighting at
    the label's age never places an early count, even within the early age's tolerance."""
    created = 1_700_000_000
    videos = pd.DataFrame({"video_id": ["calm", "hit", "late"], "create_time": [created] * 3})
    sightings = [
        *(("calm", age, plays) for age, plays in ((HOUR // 2, 10), (HOUR + 10 * 60, 20), (7 * DAY, 30))),
        *(("hit", age, plays) for age, plays in ((HOUR // 2, 10), (HOUR + 10 * 60, 20), (7 * DAY, 10**7))),
        ("late", DAY + HOUR, 500),  # within 1d's 6h, but it is the label's own sighting at 25h
        ("late", 2 * DAY, 900),  # the label's at 2d
    ]
    snapshots = pd.DataFrame(
        [(v, pd.Timestamp(created + age, unit="s", tz="UTC"), plays, 0, 0, 0, 0) for v, age, plays in sightings],
        columns=["video_id", "captured_at", *COUNTS],
    )

    growth = early_growth(videos, snapshots, at_age_s=7 * DAY, tolerance_s=DAY)

    calm, hit = growth.iloc[0], growth.iloc[1]
    pd.testing.assert_series_equal(calm, hit, check_names=False)
    w = (HOUR - HOUR / 2) / (HOUR + 10 * 60 - HOUR / 2)  # between the 30 min and 1h10m sightings
    assert calm["play_count_at_1h"] == pytest.approx(11 ** (1 - w) * 21**w - 1)
    assert calm[["play_count_at_6h", "play_count_at_1d"]].isna().all()
    at_25h = early_growth(videos, snapshots, at_age_s=DAY + HOUR, tolerance_s=DAY)
    assert pd.isna(at_25h.loc[2, "play_count_at_1d"])
    assert early_growth(videos, snapshots, at_age_s=2 * DAY, tolerance_s=DAY).loc[2, "play_count_at_1d"] == 500


def test_a_label_read_off_a_younger_sighting_never_places_an_early_count():
    """With a wide --age-tolerance the 1d label may be read off a sighting at 7h: the 6h count, whose own
    tolerance reaches 7h30, once interpolated towards it (1,950 of the label's 5,000 plays), and the
    early-views baseline was handed the label. It now has the sightings before the label's only."""
    created = 1_700_000_000
    videos = pd.DataFrame({"video_id": ["young"], "create_time": [created]})
    sightings = ((HOUR // 2, 10), (7 * HOUR, 5_000))
    snapshots = pd.DataFrame(
        [("young", pd.Timestamp(created + age, unit="s", tz="UTC"), plays, 0, 0, 0, 0) for age, plays in sightings],
        columns=["video_id", "captured_at", *COUNTS],
    )
    label = counts_at_age(videos, snapshots, at_age_s=DAY, tolerance_s=18 * HOUR)
    assert (label.loc[0, "age_basis"], label.loc[0, "play_count"]) == ("within_tolerance", 5_000)

    growth = early_growth(videos, snapshots, at_age_s=DAY, tolerance_s=18 * HOUR)

    assert growth.loc[0, ["play_count_at_1h", "play_count_at_6h"]].isna().all()


def _placed(sightings: dict[str, list[tuple[float, int]]], at_age_s: int, tolerance_s: int) -> pd.DataFrame:
    """counts_at_age over videos posted at one moment, each with its (age in seconds, plays) sightings."""
    created = 1_700_000_000
    videos = pd.DataFrame({"video_id": list(sightings), "create_time": created})
    snapshots = pd.DataFrame(
        [
            (video_id, pd.Timestamp(created + age, unit="s", tz="UTC"), plays, 0, 0, 0, 0)
            for video_id, seen in sightings.items()
            for age, plays in seen
        ],
        columns=["video_id", "captured_at", *COUNTS],
    )
    return counts_at_age(videos, snapshots, at_age_s=at_age_s, tolerance_s=tolerance_s).set_index(videos["video_id"])


def test_a_sighting_on_time_is_read_as_taken_at_the_age():
    """A tracker observes a due age seconds to minutes late: an observation 0.35 s after 7d was interpolated
    towards the 3d one (a 96 h bracket), and `age_basis == "exact"` kept no row of a real corpus. Within
    1% of the age (at least a minute) the nearest sighting is the count, as it is."""
    placed = _placed(
        {
            "late": [(3 * DAY, 100), (7 * DAY + 0.35, 5_000)],
            "early": [(7 * DAY - 90 * 60, 4_000), (8 * DAY, 9_000)],
            "nearer_after": [(7 * DAY - 30, 4_000), (7 * DAY + 20, 4_100)],
            "as_near": [(7 * DAY - 20, 4_000), (7 * DAY + 20, 4_100)],
            "an_hour_at_1h": [(3 * DAY, 100), (7 * DAY + 2 * 3_600, 6_000)],
        },
        at_age_s=7 * DAY,
        tolerance_s=DAY,
    )
    exact = placed["age_basis"] == "exact"
    assert exact.to_dict() == {
        "late": True,
        "early": True,
        "nearer_after": True,
        "as_near": True,
        "an_hour_at_1h": False,
    }
    assert placed.loc[exact, "play_count"].to_dict() == {
        "late": 5_000,
        "early": 4_000,
        "nearer_after": 4_100,
        "as_near": 4_000,
    }
    # the side it came from, for a reader of when the count was known (the author statistics)
    assert placed.loc["late", "snapshot_age_after_s"] == pytest.approx(7 * DAY + 0.35) and pd.isna(
        placed.loc["late", "snapshot_age_before_s"]
    )
    assert placed.loc["early", "snapshot_age_before_s"] == 7 * DAY - 90 * 60 and pd.isna(
        placed.loc["early", "snapshot_age_after_s"]
    )
    assert placed.loc["an_hour_at_1h", "age_basis"] == "interpolated"
    at_an_hour = _placed({"late": [(HOUR + 61, 50)], "in_time": [(HOUR + 60, 40)]}, at_age_s=HOUR, tolerance_s=900)
    assert at_an_hour["age_basis"].tolist() == ["within_tolerance", "exact"]
    # --age-tolerance 0 asks for the age to the second: nothing on either side of it stands for it
    for age, seen in ((HOUR, HOUR + 60), (7 * DAY, 7 * DAY - 90 * 60)):
        assert _placed({"v": [(seen, 40)]}, at_age_s=age, tolerance_s=0)["age_basis"].isna().all()


def test_snapshots_of_one_moment_after_the_age_give_the_one_stored_last_as_before_it():
    """The before side took the last stored of one moment, the after side the first: two readings of one
    sighting (a list and a detail call) interpolated to different labels by the side they fell on."""
    placed = _placed({"tie": [(6 * DAY, 99), (8 * DAY, 111), (8 * DAY, 9_999)]}, at_age_s=7 * DAY, tolerance_s=DAY)
    assert placed.loc["tie", "play_count"] == pytest.approx(np.sqrt(100 * 10_000) - 1)
    old = _placed({"tie": [(7 * DAY + 5 * HOUR, 111), (7 * DAY + 5 * HOUR, 999)]}, at_age_s=7 * DAY, tolerance_s=DAY)
    assert (old.loc["tie", "age_basis"], old.loc["tie", "play_count"]) == ("within_tolerance", 999)


def test_a_label_read_on_time_before_its_age_is_no_early_count():
    """A 1d label read off a sighting 10 minutes before 1d: no early count may read that sighting."""
    created = 1_700_000_000
    videos = pd.DataFrame({"video_id": ["v"], "create_time": [created]})
    snapshots = pd.DataFrame(
        [
            ("v", pd.Timestamp(created + age, unit="s", tz="UTC"), plays, 0, 0, 0, 0)
            for age, plays in ((HOUR, 10), (DAY - 600, 5_000))
        ],
        columns=["video_id", "captured_at", *COUNTS],
    )
    label = counts_at_age(videos, snapshots, at_age_s=DAY, tolerance_s=DAY)
    assert (label.loc[0, "age_basis"], label.loc[0, "play_count"]) == ("exact", 5_000)
    growth = early_growth(videos, snapshots, at_age_s=DAY, tolerance_s=DAY)
    assert growth.loc[0, "play_count_at_1h"] == 10 and pd.isna(growth.loc[0, "play_count_at_6h"])
