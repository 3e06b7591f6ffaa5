"""The corpus report: the paper's figures and the crawl's own, as one self-contained HTML page.

Figures (PNG files beside the page, and embedded in it as data URIs so the page works on its own):
video duration (the paper's Fig. 1), the engagement table and log-scale distributions (Fig. 2), the
virality score (Fig. 3) and the binary label (Fig. 4); then fps, resolution, frame count, corpus
growth over crawl time, discovery depth and the top hashtags.

Dataset figures use an export's rows and labels when one is given, otherwise the rows an export would
take now (labels fitted on the fly). Crawl figures (growth, depth, hashtags) come from the database.
Matplotlib draws through its Agg canvas (``Figure`` objects, no pyplot state); nothing touches the network.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sqlalchemy import func, select

from . import __version__
from .config import Settings
from .export import load_dataset
from .export_format import read_export
from .labels import fit_labels
from .store.db import Store, open_store
from .store.models import Hashtag, MediaFile, Video, VideoHashtag, utcnow

ENGAGEMENT = ("play_count", "like_count", "comment_count", "share_count", "collect_count")
TOP_HASHTAGS = 20
TOP_RESOLUTIONS = 10
FIGURE_SIZE = (7.0, 4.0)
DPI = 100


@dataclass
class FigureSpec:
    """One figure: its file stem, title, and what it draws on a fresh matplotlib Figure."""

    stem: str
    title: str
    draw: Callable[[Figure], None]


def build_report(settings: Settings, *, export_dir: Path | None = None, out: Path | None = None) -> Path:
    """Write the HTML report (and its PNGs in ``{out stem}_figures/``); returns the HTML path."""
    out = Path(out) if out else settings.data_dir / "report" / "report.html"
    with open_store(settings) as store:
        dataset, source = _dataset(store, export_dir)
        crawl = _crawl_frame(store)
        hashtags = _top_hashtags(store)
        safe_url = store.safe_url
    figures_dir = out.parent / f"{out.stem}_figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    images = []
    for spec in _figure_specs(dataset, crawl, hashtags):
        figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
        spec.draw(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        (figures_dir / f"{spec.stem}.png").write_bytes(buffer.getvalue())
        images.append((spec, base64.b64encode(buffer.getvalue()).decode("ascii")))
    page = _page(images, dataset, crawl, source=source, database=safe_url,
                 figures_dir=os.path.relpath(figures_dir, out.parent))
    partial = out.with_name(f".{out.name}.part")
    partial.write_text(page, encoding="utf-8")
    partial.replace(out)
    return out


def _dataset(store: Store, export_dir: Path | None) -> tuple[pd.DataFrame, str]:
    """The labelled rows to describe, and a sentence naming where they come from."""
    if export_dir is not None:
        manifest, rows = read_export(export_dir)
        return rows, (f"export {manifest['name']} v{manifest['version']} ({len(rows)} videos, made for the "
                      f"{manifest['label']} label)")
    rows, _ = load_dataset(store)
    if not rows.empty:
        rows = rows.join(fit_labels(rows)[0])
    return rows, f"the {len(rows)} videos an export would take now (paper labels fitted on them)"


def _crawl_frame(store: Store) -> pd.DataFrame:
    query = (select(Video.id, Video.first_seen_at, Video.depth, Video.source, MediaFile.downloaded_at)
             .outerjoin(MediaFile, MediaFile.video_id == Video.id))
    with store.engine.connect() as conn:
        crawl = pd.read_sql(query, conn)
    for column in ("first_seen_at", "downloaded_at"):
        crawl[column] = pd.to_datetime(crawl[column], utc=True)
    return crawl


def _top_hashtags(store: Store) -> pd.Series:
    count = func.count(VideoHashtag.video_id)
    query = (select(Hashtag.name, count.label("videos")).join(VideoHashtag, VideoHashtag.hashtag_id == Hashtag.id)
             .group_by(Hashtag.name).order_by(count.desc(), Hashtag.name).limit(TOP_HASHTAGS))
    with store.engine.connect() as conn:
        top = pd.read_sql(query, conn)
    return pd.Series(top["videos"].to_numpy(), index=top["name"].to_numpy(), dtype="int64")


def engagement_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table of engagement: mean, std, 25/50/75th percentiles and max per metric."""
    stats = {}
    for metric in ENGAGEMENT:
        values = rows[metric].astype("float64").dropna() if metric in rows else pd.Series(dtype="float64")
        stats[metric] = {"mean": values.mean(), "std": values.std(), "25%": values.quantile(0.25),
                         "50%": values.quantile(0.5), "75%": values.quantile(0.75), "max": values.max()}
    return pd.DataFrame(stats).T


def _figure_specs(dataset: pd.DataFrame, crawl: pd.DataFrame, hashtags: pd.Series) -> list[FigureSpec]:
    def column(name: str) -> pd.Series:
        return dataset[name].astype("float64").dropna() if name in dataset else pd.Series(dtype="float64")

    return [
        FigureSpec("fig1_duration", "Fig. 1 - Video duration",
                   lambda fig: _histogram(fig.subplots(), column("duration_s"), "duration (s)")),
        FigureSpec("fig2_engagement", "Fig. 2 - Engagement metrics (log scale)",
                   lambda fig: _engagement(fig, dataset)),
        FigureSpec("fig3_virality_score", "Fig. 3 - Virality score",
                   lambda fig: _histogram(fig.subplots(), column("virality_score"), "virality_score",
                                          bins=np.linspace(0, 1, 41) if len(column("virality_score")) else 40)),
        FigureSpec("fig4_is_viral", "Fig. 4 - Binary label (is_viral)",
                   lambda fig: _binary(fig.subplots(), dataset)),
        FigureSpec("fps", "Frame rate", lambda fig: _histogram(fig.subplots(), column("fps"), "fps")),
        FigureSpec("resolution", "Resolution", lambda fig: _resolution(fig.subplots(), dataset)),
        FigureSpec("frame_count", "Frame count",
                   lambda fig: _histogram(fig.subplots(), column("frame_count"), "frames")),
        FigureSpec("growth", "Corpus growth over crawl time", lambda fig: _growth(fig.subplots(), crawl)),
        FigureSpec("depth", "Discovery depth (related-list hops from a For You seed)",
                   lambda fig: _bars(fig.subplots(), crawl["depth"].value_counts().sort_index(),
                                     "depth", "videos discovered")),
        FigureSpec("hashtags", f"Top {TOP_HASHTAGS} hashtags (all discovered videos)",
                   lambda fig: _bars(fig.subplots(), hashtags.iloc[::-1], "videos", "", horizontal=True)),
    ]


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, fontsize=14, color="grey")
    ax.set_axis_off()


def _histogram(ax: Axes, values: pd.Series, xlabel: str, bins=40) -> None:
    if values.empty:
        return _no_data(ax)
    ax.hist(values.to_numpy(), bins=bins, color="#3b75af", edgecolor="white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("videos")


def _engagement(fig: Figure, dataset: pd.DataFrame) -> None:
    axes = fig.subplots(2, 2).ravel()
    for ax, metric in zip(axes, ("play_count", "like_count", "comment_count", "share_count")):
        values = dataset[metric].astype("float64").dropna().to_numpy() + 1 if metric in dataset else []
        if len(values) == 0:
            _no_data(ax)
            continue
        bins = np.logspace(0, np.log10(values.max()) + 0.01, 40)
        ax.hist(values, bins=bins, color="#3b75af", edgecolor="white")
        ax.set_xscale("log")
        ax.set_title(metric.removesuffix("_count") + "s", fontsize=10)
        ax.set_xlabel("count + 1", fontsize=8)


def _binary(ax: Axes, dataset: pd.DataFrame) -> None:
    if dataset.empty:
        return _no_data(ax)
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
        return _no_data(ax)
    sizes = (dataset["width"].astype("string") + "x" + dataset["height"].astype("string")).dropna()
    _bars(ax, sizes.value_counts().head(TOP_RESOLUTIONS).iloc[::-1], "videos", "", horizontal=True)


def _growth(ax: Axes, crawl: pd.DataFrame) -> None:
    if crawl.empty:
        return _no_data(ax)
    for column, label in (("first_seen_at", "discovered"), ("downloaded_at", "downloaded")):
        times = crawl[column].dropna().sort_values()
        if not times.empty:
            ax.step(times.dt.tz_localize(None).to_numpy(), np.arange(1, len(times) + 1), where="post",
                    label=label)
    ax.set_ylabel("videos")
    ax.set_xlabel("crawl time (UTC)")
    ax.legend()
    for label in ax.get_xticklabels():
        label.set_rotation(20)


def _bars(ax: Axes, counts: pd.Series, value_label: str, key_label: str, horizontal: bool = False) -> None:
    if counts.empty:
        return _no_data(ax)
    keys = [str(k) for k in counts.index]
    if horizontal:
        ax.barh(keys, counts.to_numpy(), color="#3b75af")
        ax.set_xlabel(value_label)
    else:
        ax.bar(keys, counts.to_numpy(), color="#3b75af")
        ax.set_xlabel(key_label)
        ax.set_ylabel(value_label)


def _page(images: list[tuple[FigureSpec, str]], dataset: pd.DataFrame, crawl: pd.DataFrame, *,
          source: str, database: str, figures_dir: str) -> str:
    table = engagement_table(dataset).to_html(float_format=lambda v: f"{v:,.1f}", na_rep="-",
                                              classes="engagement")
    viral = int(dataset["is_viral"].sum()) if "is_viral" in dataset else 0
    summary = [("videos discovered", len(crawl)), ("videos downloaded", int(crawl["downloaded_at"].notna().sum())),
               ("videos described below", len(dataset)), ("is_viral = 1", viral),
               ("is_viral = 0", len(dataset) - viral)]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:,}</td></tr>" for k, v in summary)
    figures = "".join(
        f'<figure><img alt="{html.escape(spec.title)}" src="data:image/png;base64,{data}">'
        f'<figcaption>{html.escape(spec.title)} (<a href="{html.escape(figures_dir)}/{spec.stem}.png">'
        f'{spec.stem}.png</a>)</figcaption></figure>'
        for spec, data in images)
    generated = utcnow().isoformat(timespec="seconds")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tiktok-corpus report</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
figure {{ margin: 2em 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; }}
</style></head><body>
<h1>tiktok-corpus report</h1>
<p>Generated {html.escape(generated)} by tiktok-corpus {html.escape(__version__)} from
<code>{html.escape(database)}</code>; dataset figures describe {html.escape(source)}.</p>
<table>{rows}</table>
<h2>Engagement metrics</h2>{table}
<h2>Figures</h2>{figures}
</body></html>
"""
