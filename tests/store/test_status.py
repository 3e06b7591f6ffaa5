"""`corpus status` counts: per stage and status, plus the side tables."""

from __future__ import annotations

from sqlalchemy import insert

from tiktok_corpus.store.models import RelatedEdge, StatsSnapshot, Video
from tiktok_corpus.store.status import stage_counts


def test_counts_per_stage_and_status(store):
    with store.transaction() as session:
        session.execute(
            insert(Video),
            [
                {
                    "id": "1",
                    "download_status": "downloaded",
                    "probe_status": "valid",
                    "expand_status": "expanded",
                    "expand_method": "page",
                },
                {"id": "2", "download_status": "downloaded", "probe_status": "too_short"},
                {"id": "3", "download_status": "failed", "item_kind": "photo"},
            ],
        )
        session.execute(
            insert(RelatedEdge),
            [{"parent_id": "1", "child_id": "2", "rank": 0}, {"parent_id": "1", "child_id": "3", "rank": 1}],
        )
        session.execute(insert(StatsSnapshot), [{"video_id": "1", "play_count": 10}])

    counts = stage_counts(store)

    assert counts["videos"] == 3
    assert counts["stages"] == {
        "expand": {"expanded": 1, "pending": 2},
        "download": {"downloaded": 2, "failed": 1},
        "probe": {"pending": 1, "too_short": 1, "valid": 1},
    }
    assert counts["item_kinds"] == {"photo": 1, "video": 2}
    assert counts["expand_methods"] == {"page": 1}
    assert (counts["edges"], counts["stats_snapshots"], counts["media_files"]) == (2, 1, 0)


def test_an_empty_corpus_counts_zero(store):
    counts = stage_counts(store)

    assert counts["videos"] == 0
    assert counts["stages"] == {"expand": {}, "download": {}, "probe": {}}
    assert counts["expand_methods"] == {}
