"""The grid's URL over a real socket: a value it does not know is a one-line 400 naming the parameter
and what it takes (never a silently empty grid), ``validation`` is the val split (the name `datasets`
gives it), and the URL's page number is the one the page shows."""

from __future__ import annotations

import json
import re

import httpx
import pandas as pd
import pytest

from tiktok_corpus.browse.app import BrowseServer
from tiktok_corpus.browse.catalog import PAGE_SIZE, Catalog, GridQuery
from tiktok_corpus.store.models import StatsSnapshot, Video, utcnow

VIDEOS = 2 * PAGE_SIZE + 1  # three pages, the last holding one video
SPLIT_OF = ("train", "val", "test")


@pytest.fixture
def grid(store, settings, tmp_path):
    """A served grid over VIDEOS videos (video i has i plays, split SPLIT_OF[i % 3], is_viral i % 2), with
    a hand-made export holding their labels."""
    ids = [f"{i:04d}" for i in range(VIDEOS)]
    with store.transaction() as session:
        session.add_all([Video(id=video_id, item_kind="video") for video_id in ids])
        session.flush()
        session.add_all([StatsSnapshot(video_id=v, captured_at=utcnow(), play_count=i) for i, v in enumerate(ids)])
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "manifest.json").write_text(json.dumps({"label_column": "is_viral"}))
    pd.DataFrame(
        {"video_id": ids, "is_viral": [i % 2 for i in range(VIDEOS)], "split": [SPLIT_OF[i % 3] for i in range(VIDEOS)]}
    ).to_parquet(export_dir / "videos.parquet")
    with (
        BrowseServer(settings, store, Catalog(store, export_dir)) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        yield client


def _shown(page: httpx.Response) -> list[int]:
    assert page.status_code == 200, page.text
    return [int(v) for v in re.findall(r'data-video-id="(\d+)"', page.text)]


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("order=sideways", "order 'sideways': expected desc or asc"),
        ("sort=bogus", "sort 'bogus': expected one of play_count,"),
        ("split=valid", "split 'valid': expected one of train, val (or validation), test"),
        ("label=yes", "label 'yes': expected 0 or 1"),
        ("page=abc", "page 'abc': expected a page number, 1 or more"),
        ("page=0", "page 0: expected 1 or more"),
        ("page=" + "1" * 5000, "page '111111111111...': expected a page number, 1 or more"),
        ("page=4", "page 4: expected 1 to 3"),
        ("split=test&page=2", "page 2: expected 1 to 1"),
    ],
)
def test_a_value_the_grid_does_not_know_is_a_one_line_400(grid, query, said):
    answer = grid.get(f"/?{query}")
    assert answer.status_code == 400
    assert answer.text.startswith(f"bad query: {said}") and len(answer.text.splitlines()) == 1


def test_validation_is_the_val_split_and_labels_filter(grid):
    val = _shown(grid.get("/?split=val"))
    assert val and all(SPLIT_OF[i % 3] == "val" for i in val)
    assert _shown(grid.get("/?split=validation")) == val
    viral = _shown(grid.get("/?label=1&split=&order="))  # the form's empty fields are "any" and the default
    assert viral and all(i % 2 for i in viral)


def test_the_urls_page_number_is_the_page_shown_and_its_links_agree(grid):
    first = grid.get("/")
    assert "page 1 of 3" in first.text and 'href="/?sort=play_count&amp;order=desc&amp;page=2">next' in first.text
    assert "previous" not in first.text
    assert _shown(first) == _shown(grid.get("/?page=1")) == list(range(VIDEOS - 1, VIDEOS - 1 - PAGE_SIZE, -1))

    last = grid.get("/?page=3")
    assert "page 3 of 3" in last.text and _shown(last) == [0]  # the fewest plays, last
    assert 'page=2">previous' in last.text and "next" not in last.text
    assert _shown(grid.get("/?page=2")) == list(range(VIDEOS - 1 - PAGE_SIZE, 0, -1))


def test_the_label_filter_takes_is_viral_in_an_export_of_the_continuous_label(store, tmp_path):
    """An export trained on virality_score still says which videos are viral: 0/1 filter by that."""
    ids = ["0001", "0002", "0003"]
    with store.transaction() as session:
        session.add_all([Video(id=video_id, item_kind="video") for video_id in ids])
    export_dir = tmp_path / "continuous"
    export_dir.mkdir()
    (export_dir / "manifest.json").write_text(json.dumps({"label_column": "virality_score"}))
    pd.DataFrame(
        {"video_id": ids, "virality_score": [0.91, 0.12, 1.0], "is_viral": [1, 0, 1], "split": ["test"] * 3}
    ).to_parquet(export_dir / "videos.parquet")
    catalog = Catalog(store, export_dir)

    viral = catalog.page(GridQuery(label="1", sort="video_id", descending=False)).rows
    calm = catalog.page(GridQuery(label="0")).rows

    assert list(viral["video_id"]) == ["0001", "0003"] and list(calm["video_id"]) == ["0002"]
    assert list(viral["label"]) == [0.91, 1.0]  # the cards still show the export's own label
