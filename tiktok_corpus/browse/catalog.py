"""The grid's data: every video with its latest counts, joined with an export's label and split and a
run's score and error, sorted, filtered and paged in memory.

The database part is re-read every :data:`REFRESH_S` seconds (a crawl may be adding rows) in a
background thread, while pages are served from the rows read before: at 100,000 videos a re-read takes
seconds, which no page should wait for. The export and its run are files, read once. Sorting 100,000
rows with numpy takes milliseconds, so any column can be a sort key without an index per column.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..export.format import read_export
from ..export.runs import export_for_run, latest_run
from ..store.browse import grid_rows, hashtag_video_ids
from ..store.db import Store
from ..tiktok.contract.records import ID_CHARS

log = logging.getLogger(__name__)

REFRESH_S = 30.0
PAGE_SIZE = 48
MAX_PAGE_DIGITS = 12  # far past any corpus's last page
COUNT_LABELS = {"play_count": "plays", "like_count": "likes", "comment_count": "comments", "share_count": "shares"}
SORT_KEYS = (
    "play_count",
    "like_count",
    "comment_count",
    "share_count",
    "label",
    "split",
    "score",
    "error",
    "create_time",
    "video_id",
)
ORDERS = ("desc", "asc")
SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"validation": "val"}  # the name `datasets` and the Hub give the val split
LABELS = ("0", "1")  # is_viral


@dataclass(frozen=True)
class GridQuery:
    """One page of the grid: sort key and direction, filters (``None``: all) and the page number, from 1
    as the page shows it."""

    sort: str = "play_count"
    descending: bool = True
    hashtag: str | None = None
    author: str | None = None
    split: str | None = None
    label: str | None = None
    page: int = 1

    def __post_init__(self) -> None:
        if self.sort not in SORT_KEYS:
            raise ConfigError(f"sort {self.sort!r}: expected one of {', '.join(SORT_KEYS)}")
        if self.split is not None and self.split not in SPLITS:
            raise ConfigError(f"split {self.split!r}: expected one of train, val (or validation), test")
        if self.label is not None and self.label not in LABELS:
            raise ConfigError(f"label {self.label!r}: expected 0 or 1 (is_viral)")
        if self.page < 1:
            raise ConfigError(f"page {self.page}: expected 1 or more")

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> GridQuery:
        """The query of a grid URL (an empty value is the default); :class:`ConfigError` naming the
        parameter and what it takes for any value it does not know, so a typo is never an empty grid."""
        values = {name: value for name, value in params.items() if value}
        if named := next((name for name, value in values.items() if "\x00" in value), None):
            raise ConfigError(f"{named}: a value with a NUL character matches nothing")
        order = values.get("order", "desc")
        if order not in ORDERS:
            raise ConfigError(f"order {order!r}: expected desc or asc")
        page = values.get("page", "1")
        if not (page.isascii() and page.isdigit() and len(page) <= MAX_PAGE_DIGITS):  # int() refuses 4,300 digits
            shown = page if len(page) <= MAX_PAGE_DIGITS else page[:MAX_PAGE_DIGITS] + "..."
            raise ConfigError(f"page {shown!r}: expected a page number, 1 or more")
        split = values.get("split")
        return cls(
            sort=values.get("sort", "play_count"),
            descending=order == "desc",
            hashtag=values.get("hashtag"),
            author=values.get("author"),
            split=SPLIT_ALIASES.get(split, split) if split else None,
            label=values.get("label"),
            page=int(page),
        )


@dataclass(frozen=True)
class GridPage:
    rows: pd.DataFrame
    total: int
    query: GridQuery

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


class Catalog:
    """The videos the app shows; thread-safe (uvicorn runs the sync handlers on a pool)."""

    def __init__(
        self,
        store: Store,
        export_dir: Path | None = None,
        run_dir: Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        export_dir = export_for_run(run_dir, export_dir)  # a run's scores mean nothing on another's rows
        self.export_dir = Path(export_dir) if export_dir else None
        self.run_dir = run_dir or (latest_run(self.export_dir) if self.export_dir else None)
        self.labels = _labels(self.export_dir, self.run_dir)
        self._clock = clock
        self._lock = threading.Lock()  # guards the fields below
        self._first_read = threading.Lock()  # one first read, however many pages ask at once
        self._rows: pd.DataFrame | None = None
        self._read_at = 0.0
        self._rereading = False

    def rows(self) -> pd.DataFrame:
        """Every video with ``label, split, score, error`` (null where the export or run has none): the
        first call reads the database; later ones return the last read at once and, when it is older than
        :data:`REFRESH_S`, start a re-read in the background."""
        with self._lock:
            rows = self._rows
            if rows is not None and not self._rereading and self._clock() - self._read_at > REFRESH_S:
                self._rereading = True
                threading.Thread(target=self._reread, name="browse-reread", daemon=True).start()
        if rows is not None:
            return rows
        with self._first_read:
            return self._rows if self._rows is not None else self.read()

    def read(self) -> pd.DataFrame:
        """Read the grid's rows from the database now; later :meth:`rows` calls return them."""
        rows = grid_rows(self.store)
        rows = rows.join(self.labels, on="video_id") if not self.labels.empty else _no_labels(rows)
        # Indexed by id, so a poster's or a video page's row is a hash lookup, not a scan of every row;
        # the index is unnamed, so "video_id" stays a plain column to sort by.
        rows.index = pd.Index(rows["video_id"].to_numpy())
        with self._lock:
            self._rows, self._read_at = rows, self._clock()
        return rows

    def _reread(self) -> None:
        try:
            self.read()
        except Exception as exc:  # the database went away: keep showing the last rows, try again later
            log.warning("browse: re-reading the grid failed (%s); pages show the rows read before", exc)
            with self._lock:
                self._read_at = self._clock()
        finally:
            with self._lock:
                self._rereading = False

    def video(self, video_id: str) -> pd.Series | None:
        rows = self.rows()
        return cast(pd.Series, rows.loc[video_id]) if video_id in rows.index else None  # ids are unique: a row

    def page(self, query: GridQuery) -> GridPage:
        rows = self.rows()
        keep = np.ones(len(rows), dtype=bool)
        if query.hashtag:
            keep &= rows["video_id"].isin(hashtag_video_ids(self.store, query.hashtag)).to_numpy()
        if query.author:
            keep &= (rows["author"].str.lower() == query.author.lower().lstrip("@")).fillna(False).to_numpy(bool)
        for column, wanted in (("split", query.split), ("viral", query.label)):
            if wanted:
                keep &= (rows[column].astype("string") == wanted).fillna(False).to_numpy(bool)
        chosen = rows[keep]
        ordered = chosen.sort_values(
            [query.sort, "video_id"],
            ascending=[not query.descending, True],
            na_position="last",
            kind="stable",
            key=_as_numbers,
        )
        start = (query.page - 1) * PAGE_SIZE
        found = GridPage(ordered.iloc[start : start + PAGE_SIZE], len(ordered), query)
        if query.page > found.pages:
            raise ConfigError(f"page {query.page}: expected 1 to {found.pages}")
        return found


def _as_numbers(column: pd.Series) -> pd.Series:
    """Ids sort as the numbers they are (``9`` before ``10``), padded to the most digits one holds."""
    return column.str.zfill(ID_CHARS) if column.name == "video_id" else column


def _labels(export_dir: Path | None, run_dir: Path | None) -> pd.DataFrame:
    """``label, split, score, error`` by video id, from an export (its label column) and a run's
    predictions (``error`` = ``|score - target|``); empty without an export."""
    if export_dir is None:
        return pd.DataFrame()
    manifest, table = read_export(export_dir)
    label_column = manifest.get("label_column", "is_viral")
    labels = pd.DataFrame(
        {
            "label": table[label_column].convert_dtypes().array,
            # what the label filter (0/1) matches, whichever label the export trains on (a continuous one too)
            "viral": (table["is_viral"] if "is_viral" in table else table[label_column]).astype("string").array,
            "split": table["split"].astype("string").to_numpy(),
        },
        index=pd.Index(table["video_id"].astype(str), name="video_id"),
    )
    labels["score"] = labels["error"] = np.nan
    if run_dir is not None and (Path(run_dir) / "predictions.parquet").is_file():
        predictions = pd.read_parquet(Path(run_dir) / "predictions.parquet")
        predictions = predictions.set_index(predictions["video_id"].astype(str))
        labels["score"] = predictions["score"].reindex(labels.index)
        labels["error"] = (predictions["score"] - predictions["target"]).abs().reindex(labels.index)
    return labels


def _no_labels(rows: pd.DataFrame) -> pd.DataFrame:
    unknown = pd.Series(pd.NA, index=rows.index, dtype="string")
    return rows.assign(label=np.nan, viral=unknown, split=unknown, score=np.nan, error=np.nan)
