"""The pages' HTML without a server: the snapshot chart."""

from __future__ import annotations

import re

import pandas as pd

from tiktok_corpus.browse.pages import snapshot_chart


def test_a_missing_count_leaves_a_gap_in_its_line_not_a_drop_to_zero():
    snapshots = pd.DataFrame(
        {
            "captured_at": pd.to_datetime(["2024-05-01", "2024-05-02", "2024-05-03"], utc=True),
            "play_count": pd.array([10, None, 1000], dtype="Int64"),
            "like_count": pd.array([1, 2, 3], dtype="Int64"),
            "comment_count": pd.array([None, None, None], dtype="Int64"),
            "share_count": pd.array([0, 0, 0], dtype="Int64"),
        }
    )

    chart = snapshot_chart(snapshots)

    lines = {title: points.split() for points, title in re.findall(r'points="([^"]*)"><title>(\w+)</title>', chart)}
    assert set(lines) == {"play_count", "like_count", "share_count"}  # no line for a count never known
    assert len(lines["like_count"]) == 3
    assert len(lines["play_count"]) == 2  # the day without a count is skipped
    zero = f",{220 - 20:.1f}"  # where a count of 0 is drawn (the default height, less the margin)
    assert all(point.endswith(zero) for point in lines["share_count"])
    assert not any(point.endswith(zero) for point in lines["play_count"])
