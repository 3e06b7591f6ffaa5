"""The web app's HTML: the grid, a video's page and the queue, as strings.

Every text that came from TikTok (captions, user names, error messages) goes through :func:`text`,
which escapes ``& < > " '`` and so is safe both between tags and inside quoted attributes. No page
embeds data in a ``<script>``; the snapshot chart is an inline SVG drawn here.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd

from .catalog import COUNT_LABELS, LABELS, ORDERS, SORT_KEYS, SPLITS, GridPage, GridQuery

# The author's counts charted on a video's page (their snapshots come with every sighting of their videos).
AUTHOR_LABELS = {"follower_count": "followers", "heart_count": "likes", "video_count": "videos"}

STYLE = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
nav a { margin-right: 1em; }
form.filters { margin: 1em 0; display: flex; gap: .6em; flex-wrap: wrap; align-items: end; }
form.filters label { display: flex; flex-direction: column; font-size: .8em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 14px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 6px; font-size: .8em; overflow: hidden; }
.card img { width: 100%; height: 220px; object-fit: contain; background: #111; display: block; }
.no-poster { height: 220px; display: flex; align-items: center; justify-content: center; background: #eee; }
.caption { color: #444; max-height: 3.6em; overflow: hidden; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: .6em 0; } th, td { border: 1px solid #ccc; padding: 3px 8px; }
video { max-height: 70vh; max-width: 100%; background: #000; }
.pager a, .pager span { margin-right: 1em; }
"""


def text(value: object) -> str:
    """Any value as HTML text (safe in attributes too); ``-`` for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    return html.escape(str(value), quote=True)


def layout(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{text(title)}</title>'
        f'<style>{STYLE}</style></head><body><nav><a href="/">Videos</a><a href="/queue">Queue</a>'
        f'<a href="/report">Report</a></nav>{body}</body></html>'
    )


def grid_page(page: GridPage, source: str) -> str:
    query = page.query
    cards = "".join(_card(row) for row in page.rows.itertuples(index=False))
    return layout(
        "tiktok-corpus: videos",
        f"<h1>Videos</h1><p>{page.total:,} videos ({text(source)}).</p>{_filters(query)}"
        f'<div class="grid" id="grid">{cards}</div>{_pager(page)}',
    )


def _card(row) -> str:
    counts = " ".join(f"{label} {_number(getattr(row, column))}" for column, label in COUNT_LABELS.items())
    scored = "" if _missing(row.score) else f" score {row.score:.3f} error {row.error:.3f}"
    labelled = "" if _missing(row.label) else f"label {text(row.label)} ({text(row.split)}){scored}"
    return (
        f'<div class="card" data-video-id="{text(row.video_id)}"><a href="/video/{quote(str(row.video_id))}">'
        f"{_poster(row)}</a>"
        f'<div class="author">@{text(row.author)}</div><div class="counts">{counts}</div>'
        f'<div class="labels">{labelled}</div><div class="caption">{text(row.desc)}</div></div>'
    )


def _poster(row) -> str:
    """The poster frame, or a plain box saying why there is none (a photo post, a file not downloaded)."""
    if not isinstance(row.media_path, str):
        return '<div class="no-poster">no video file</div>'
    return f'<img loading="lazy" alt="" src="/poster/{quote(str(row.video_id))}.jpg">'


def _filters(query: GridQuery) -> str:
    """The grid's form: a list for every parameter with set values (what the URL takes, so the form never
    makes a query the grid refuses), a text field for the hashtag and the author."""
    chosen = {
        "sort": query.sort,
        "order": "desc" if query.descending else "asc",
        "split": query.split,
        "label": query.label,
    }
    choices = {"sort": SORT_KEYS, "order": ORDERS, "split": ("", *SPLITS), "label": ("", *LABELS)}
    lists = "".join(
        f'<label>{name}<select name="{name}">'
        + "".join(
            f'<option value="{value}"{" selected" if value == (chosen[name] or "") else ""}>{value or "any"}</option>'
            for value in values
        )
        + "</select></label>"
        for name, values in choices.items()
    )
    fields = "".join(
        f'<label>{name}<input name="{name}" value="{text(getattr(query, name) or "")}"></label>'
        for name in ("hashtag", "author")
    )
    return f'<form class="filters" method="get" action="/">{lists}{fields}<button type="submit">Show</button></form>'


def _pager(page: GridPage) -> str:
    query = page.query

    def link(number: int, label: str) -> str:
        params = {
            "sort": query.sort,
            "order": "desc" if query.descending else "asc",
            **{k: v for k in ("hashtag", "author", "split", "label") if (v := getattr(query, k))},
            "page": number,
        }
        return f'<a href="/?{text(urlencode(params))}">{label}</a>'

    previous = link(query.page - 1, "previous") if query.page > 1 else ""
    following = link(query.page + 1, "next") if query.page < page.pages else ""
    return f'<div class="pager">{previous}<span>page {query.page} of {page.pages}</span>{following}</div>'


def video_page(
    detail: dict,
    labels: pd.Series | None,
    snapshots: pd.DataFrame,
    author: pd.DataFrame,
    related: dict[str, list[tuple[str, int]]],
    attempts: pd.DataFrame,
) -> str:
    video_id = str(detail["video_id"])
    player = (
        f'<video id="player" controls preload="auto" src="/media/{quote(video_id)}"></video>'
        if detail.get("path")
        else "<p>No downloaded file.</p>"
    )
    # Each time says its clock: the site's own (posting, and snapshots read off its answers) can be far
    # from this machine's, which stamps the sightings (a replica's clock runs fast).
    facts = {
        "author": f"@{detail.get('author') or '-'}",
        "posted (site clock)": _when(detail.get("create_time")),
        "found via": f"{detail.get('source')} at depth {detail.get('depth')}",
        "first seen (local clock)": _when(detail.get("first_seen_at")),
        "last seen (local clock)": _when(detail.get("last_seen_at")),  # the latest list that showed it
        "download": f"{detail.get('download_status')} {detail.get('download_error') or ''}",
        "probe": f"{detail.get('probe_status')} {detail.get('probe_error') or ''}",
    }
    if labels is not None:
        facts |= {k: labels.get(k) for k in ("label", "split", "score", "error")}
    probe = {k: detail.get(k) for k in ("size_bytes", "sha256", "container", "video_codec", "width", "height")}
    probe |= {k: detail.get(k) for k in ("avg_fps", "duration_s", "frame_count", "has_audio", "audio_codec")}
    return layout(
        f"video {video_id}",
        f'<h1>Video {text(video_id)}</h1>{player}<p class="desc">{text(detail.get("desc"))}</p>'
        f"{_table(facts)}<h2>Stats over time</h2>{snapshot_chart(snapshots)}"
        "<p>One row per observation: the sightings of one moment with the same counts (the lists of one "
        "crawl moment that showed the video) are counted, not repeated. <code>clock</code> says whose clock "
        "<code>captured_at</code> is on: the site's (its answer's own time) or local.</p>"
        f"{_observations(snapshots).to_html(index=False, na_rep='-', classes='snapshots')}"
        f"<h2>The author over time</h2>{snapshot_chart(author, AUTHOR_LABELS, chart_id='author-chart')}"
        f"<h2>Related videos</h2>{_related(related)}<h2>Probe</h2>{_table(probe)}"
        f"<h2>Download attempts</h2>{attempts.to_html(index=False, na_rep='-', classes='attempts')}",
    )


def _observations(snapshots: pd.DataFrame) -> pd.DataFrame:
    """The snapshots with those of one moment, clock and counts as one row, in time order: how many
    sightings it joins (``sightings``) and their ``sources``. The rows stay in the database; only the
    page joins them."""
    keys = [c for c in snapshots.columns if c != "source"]
    return (
        snapshots.groupby(keys, dropna=False, sort=False)["source"]
        .agg(sightings="size", sources=lambda sources: ", ".join(sorted(set(sources.dropna()))))
        .reset_index()
    )


def _related(related: dict[str, list[tuple[str, int]]]) -> str:
    parts = []
    for key, heading in (("parents", "listed it in their related list"), ("children", "in its related list")):
        links = "".join(
            f'<li><a class="related" href="/video/{quote(v)}">{text(v)}</a> (rank {rank})</li>'
            for v, rank in related[key]
        )
        parts.append(f'<h3>{heading} ({len(related[key])})</h3><ul class="{key}">{links}</ul>')
    return "".join(parts)


def snapshot_chart(
    snapshots: pd.DataFrame,
    labels: dict[str, str] = COUNT_LABELS,
    *,
    chart_id: str = "snapshot-chart",
    width: int = 640,
    height: int = 220,
) -> str:
    """Counts (log scale, ``+1``) against capture time as an inline SVG, one line per count of ``labels``;
    a snapshot without a count, or with a negative one (no count at all), leaves no point on that count's
    line (a drop to 0 would be a false plunge)."""
    if snapshots.empty:
        return "<p>No snapshot.</p>"
    times = pd.to_datetime(snapshots["captured_at"], utc=True).astype("int64").to_numpy() / 1e9
    span = max(float(times.max() - times.min()), 1.0)
    counts = {c: snapshots[c].astype("float64").to_numpy() for c in labels}
    # A count with no usable value draws no line: all NaN, its maximum was NaN, and so was every line's scale.
    values = {c: np.log10(np.where(v >= 0, v, np.nan) + 1) for c, v in counts.items() if (v >= 0).any()}
    top = max([float(np.nanmax(v)) for v in values.values()] + [1.0])
    colors = ("#3b75af", "#d9534f", "#5cb85c", "#f0ad4e")
    lines: list[str] = []
    for (column, series), color in zip(values.items(), colors):
        points = " ".join(
            f"{40 + (t - times.min()) / span * (width - 60):.1f},{height - 20 - v / top * (height - 40):.1f}"
            for t, v in zip(times, series)
            if not np.isnan(v)
        )
        lines.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"><title>{column}</title>'
            f'</polyline><text x="{width - 110}" y="{20 + 14 * len(lines)}" fill="{color}">'
            f"{labels[column]}</text>"
        )
    return (
        f'<svg id="{chart_id}" width="{width}" height="{height}" role="img" aria-label="counts over time">'
        f'<line x1="40" y1="{height - 20}" x2="{width - 20}" y2="{height - 20}" stroke="#888"/>'
        f'<text x="40" y="{height - 4}">{len(times)} snapshots, log10(count + 1) up to {top:.1f}</text>'
        f"{''.join(lines)}</svg>"
    )


def queue_page(counts: dict, report: bool) -> str:
    rows = "".join(
        f"<tr><th>{text(stage)}</th><td>{text(status)}</td><td>{n:,}</td></tr>"
        for stage, by_status in counts["stages"].items()
        for status, n in by_status.items()
    )
    link = (
        '<p><a href="/report">The report</a></p>' if report else "<p>No report yet: run <code>corpus report</code>.</p>"
    )
    return layout(
        "tiktok-corpus: queue",
        f"<h1>Queue</h1><p>{counts['videos']:,} items, {counts['edges']:,} related edges.</p>"
        f'<table id="queue"><tr><th>stage</th><th>status</th><th>videos</th></tr>{rows}</table>{link}',
    )


def _table(values: dict) -> str:
    return "<table>" + "".join(f"<tr><th>{text(k)}</th><td>{text(v)}</td></tr>" for k, v in values.items()) + "</table>"


def _when(value: datetime | float | None) -> str | None:
    """A stored time (UTC, naive where the database drops the zone) or unix seconds, to the minute."""
    if _missing(value):
        return None
    if not isinstance(value, datetime):
        try:
            value = datetime.fromtimestamp(float(value), UTC)  # type: ignore[arg-type]  # unix seconds
        except (ValueError, OverflowError, OSError):  # a number no calendar holds (a corpus of older versions)
            return f"{value} (unix seconds, out of range)"
    return f"{value.astimezone(UTC) if value.tzinfo else value:%Y-%m-%d %H:%M} UTC"


def _number(value) -> str:
    return "-" if _missing(value) else f"{int(value):,}"


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
