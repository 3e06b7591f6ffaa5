"""What the report shows: the paper's engagement table and every figure, drawn on matplotlib's Agg
canvas (``Figure`` objects, no pyplot state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .growth import COVERAGE, FIRST_SIGHTED, GrowthByAge, plays_column

ENGAGEMENT = ("play_count", "like_count", "comment_count", "share_count", "collect_count")
TOP_HASHTAGS = 20
TOP_RESOLUTIONS = 10
LABEL_CHARS = 32  # a longer hashtag took the bars' room, and past ~110 characters every label was cut


@dataclass
class FigureSpec:
    """One figure: its file stem, title, and what it draws on a fresh matplotlib Figure."""

    stem: str
    title: str
    draw: Callable[[Figure], None]


def engagement_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table of engagement: mean, std, 25/50/75th percentiles and max per metric."""
    stats = {}
    for metric in ENGAGEMENT:
        values = rows[metric].astype("float64").dropna() if metric in rows else pd.Series(dtype="float64")
        stats[metric] = {
            "mean": values.mean(),
            "std": values.std(),
            "25%": values.quantile(0.25),
            "50%": values.quantile(0.5),
            "75%": values.quantile(0.75),
            "max": values.max(),
        }
    return pd.DataFrame(stats).T


def figure_specs(dataset: pd.DataFrame, crawl: pd.DataFrame, hashtags: pd.Series) -> list[FigureSpec]:
    """Every figure, in page order: dataset figures from ``dataset``, crawl figures from the others."""

    def column(name: str) -> pd.Series:
        return dataset[name].astype("float64").dropna() if name in dataset else pd.Series(dtype="float64")

    return [
        FigureSpec(
            "fig1_duration",
            "Fig. 1 - Video duration",
            lambda fig: _histogram(fig.subplots(), column("duration_s"), "duration (s)"),
        ),
        FigureSpec("fig2_engagement", "Fig. 2 - Engagement metrics (log scale)", lambda fig: _engagement(fig, dataset)),
        FigureSpec(
            "fig3_virality_score",
            "Fig. 3 - Virality score",
            lambda fig: _histogram(
                fig.subplots(),
                column("virality_score"),
                "virality_score",
                bins=score_bins(column("virality_score")),
            ),
        ),
        FigureSpec("fig4_is_viral", "Fig. 4 - Binary label (is_viral)", lambda fig: _binary(fig.subplots(), dataset)),
        FigureSpec("fps", "Frame rate", lambda fig: _histogram(fig.subplots(), column("fps"), "fps")),
        FigureSpec("resolution", "Resolution", lambda fig: _resolution(fig.subplots(), dataset)),
        FigureSpec(
            "frame_count", "Frame count", lambda fig: _histogram(fig.subplots(), column("frame_count"), "frames")
        ),
        FigureSpec("growth", "Corpus growth over crawl time", lambda fig: _growth(fig.subplots(), crawl)),
        FigureSpec(
            "depth",
            "Discovery depth (related-list hops from a For You seed)",
            lambda fig: _bars(fig.subplots(), crawl["depth"].value_counts().sort_index(), "videos discovered", "depth"),
        ),
        FigureSpec(
            "hashtags",
            f"Top {TOP_HASHTAGS} hashtags (all discovered videos)",
            lambda fig: _bars(fig.subplots(), hashtags.iloc[::-1], "videos", "", horizontal=True),
        ),
    ]


def growth_specs(growth: GrowthByAge) -> list[FigureSpec]:
    """The growth section's figures: plays by age and snapshot coverage once videos were re-observed
    (before that a curve would only compare different videos), and always the ages at first sighting."""
    first_sighting = FigureSpec(
        "first_sighting_age",
        "Age at first sighting (videos per age bin of their first stats snapshot)",
        lambda fig: _bars(fig.subplots(), growth.table[FIRST_SIGHTED], "videos", "age since posting"),
    )
    if not growth.snapshots:
        return []
    if not growth.re_observed:
        return [first_sighting]
    return [
        FigureSpec(
            "growth_by_age",
            "Plays by age since posting: median and quartile band (log scale)",
            lambda fig: _growth_curves(fig.subplots(), growth),
        ),
        FigureSpec(
            "snapshot_coverage",
            "Snapshot coverage: videos with a stats snapshot in each age bin",
            lambda fig: _bars(fig.subplots(), growth.table[COVERAGE], "videos", "age since posting"),
        ),
        first_sighting,
    ]


def _growth_curves(ax: Axes, growth: GrowthByAge) -> None:
    table = growth.table
    if table[[plays_column("median", g) for g in growth.groups]].isna().all(axis=None):
        return no_data(ax)
    x = np.arange(len(table))
    for group in growth.groups:
        low, median, high = (table[plays_column(q, group)].to_numpy() + 1 for q in ("25%", "median", "75%"))
        (line,) = ax.plot(x, median, marker="o", label=group)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    ax.set_xticks(x, table.index)
    ax.set_xlabel("age since posting")
    ax.set_ylabel("plays + 1")
    ax.legend()


def plain(label: object) -> str:
    """A label from the data (a hashtag, a column name) drawn as written: matplotlib reads ``$...$`` as
    mathtext, where a hashtag such as ``$\\foo{$`` stops the whole report; ``\\$`` is a literal ``$``."""
    return str(label).replace("$", r"\$")


def score_bins(scores: pd.Series) -> np.ndarray | int:
    """Fortieths of [0, 1], widened to the scores: val and test ones may lie outside the train split's
    [0, 1] (the card says so), and fixed edges left them out of the histogram without a word."""
    if not len(scores):
        return 40
    low, high = min(0.0, float(scores.min())), max(1.0, float(scores.max()))
    return np.linspace(low, high, int(round((high - low) * 40)) + 1)


def shortened(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def no_data(ax: Axes) -> None:
    """Say "no data" on an empty figure instead of drawing empty axes."""
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, fontsize=14, color="grey")
    ax.set_axis_off()


def _histogram(ax: Axes, values: pd.Series, xlabel: str, bins=40) -> None:
    if values.empty:
        return no_data(ax)
    ax.hist(values.to_numpy(), bins=bins, color="#3b75af", edgecolor="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("videos")


def _engagement(fig: Figure, dataset: pd.DataFrame) -> None:
    axes = fig.subplots(2, 2).ravel()
    for ax, metric in zip(axes, ("play_count", "like_count", "comment_count", "share_count")):
        values = dataset[metric].astype("float64").dropna().to_numpy() + 1 if metric in dataset else np.empty(0)
        if len(values) == 0:
            no_data(ax)
            continue
        bins = np.logspace(0, np.log10(values.max()) + 0.01, 40)
        ax.hist(values, bins=bins, color="#3b75af", edgecolor="white")
        ax.set_xscale("log")
        ax.set_title(metric.removesuffix("_count") + "s", fontsize=10)
        ax.set_xlabel("count + 1", fontsize=8)


def _binary(ax: Axes, dataset: pd.DataFrame) -> None:
    if dataset.empty:
        return no_data(ax)
    if "split" in dataset:
        table = pd.crosstab(dataset["split"], dataset["is_viral"]).reindex(columns=[0, 1], fill_value=0)
        table = table.reindex([s for s in ("train", "val", "test") if s in table.index])
        x = np.arange(len(table))
        ax.bar(x - 0.2, table[0], 0.4, label="is_viral = 0", color="#9db9d5")
        ax.bar(x + 0.2, table[1], 0.4, label="is_viral = 1", color="#d9534f")
        ax.set_xticks(x, table.index)
        ax.legend()
    else:
        counts = dataset["is_viral"].value_counts().reindex([0, 1], fill_value=0)
        ax.bar(["is_viral = 0", "is_viral = 1"], counts.to_numpy(), color=["#9db9d5", "#d9534f"])
    ax.set_ylabel("videos")


def _resolution(ax: Axes, dataset: pd.DataFrame) -> None:
    if dataset.empty:
        return no_data(ax)
    sizes = (dataset["width"].astype("string") + "x" + dataset["height"].astype("string")).dropna()
    _bars(ax, sizes.value_counts().head(TOP_RESOLUTIONS).iloc[::-1], "videos", "", horizontal=True)


def _growth(ax: Axes, crawl: pd.DataFrame) -> None:
    if crawl.empty:
        return no_data(ax)
    for column, label in (("first_seen_at", "discovered"), ("downloaded_at", "downloaded")):
        times = crawl[column].dropna().sort_values()
        if not times.empty:
            ax.step(times.dt.tz_localize(None).to_numpy(), np.arange(1, len(times) + 1), where="post", label=label)
    ax.set_ylabel("videos")
    ax.set_xlabel("crawl time (UTC)")
    ax.legend()
    for tick in ax.get_xticklabels():
        tick.set_rotation(20)


def _bars(ax: Axes, counts: pd.Series, value_label: str, key_label: str, horizontal: bool = False) -> None:
    if counts.empty:
        return no_data(ax)
    keys = [plain(shortened(str(k))) for k in counts.index]
    if horizontal:
        ax.barh(keys, counts.to_numpy(), color="#3b75af")
        ax.set_xlabel(value_label)
    else:
        ax.bar(keys, counts.to_numpy(), color="#3b75af")
        ax.set_xlabel(key_label)
        ax.set_ylabel(value_label)
