"""``build_report``: read the dataset and the crawl's history, draw every figure, write one page."""

from __future__ import annotations

import base64
import functools
import html
import io
import os
import re
import shlex
import warnings
from pathlib import Path
from urllib.parse import quote

import matplotlib
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure

from .. import __version__
from .._files import replacing, write_text_atomically
from ..config import Settings
from ..errors import ConfigError
from ..export import fit_labels, load_dataset, read_export
from ..export.runs import export_for_run, latest_run
from ..store.db import Store, open_store
from ..store.models import utcnow
from ..store.reports import REPORT_PAGE, crawl_history, play_snapshots, report_figures_dir, top_hashtags
from .figures import TOP_HASHTAGS, FigureSpec, engagement_table, figure_specs, growth_specs
from .growth import GrowthByAge, growth_by_age
from .model import HEADING, model_section

FIGURE_SIZE = (7.0, 4.0)
DPI = 100
# Fonts for the scripts TikTok's hashtags are written in, used where installed (Debian: fonts-noto-cjk,
# fonts-noto-color-emoji): matplotlib falls back through them glyph by glyph.
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Color Emoji", "Noto Emoji", "Noto Sans Symbols 2")
EXPORT_META = "tiktok-corpus-export"  # the page's <meta> naming the export it was made from


def build_report(
    settings: Settings,
    *,
    export_dir: Path | None = None,
    run_dir: Path | None = None,
    out: Path | None = None,
    replace: bool = False,
) -> Path:
    """Write the HTML report (by default ``<data dir>/report/report.html``, where ``corpus browse`` serves
    it; its PNGs in ``{out stem}_figures/``); returns the HTML path.

    The model section shows ``run_dir``, or else the newest run of ``export_dir``; a run given alone
    brings its export's labels too, and one given with an export must have been trained on it
    (:class:`~tiktok_corpus.export.runs.RunExportMismatch` otherwise). Poster frames are cached in
    ``<data dir>/posters``. Without an export, a page with a model section is replaced only when
    ``replace`` says so (:func:`_keep_model`).
    """
    export_dir = export_for_run(run_dir, export_dir)
    run_dir = run_dir if run_dir is not None else latest_run(export_dir) if export_dir is not None else None
    with open_store(settings, create=False, reads_only=True) as store:
        out = _writable_html_path(Path(out), "--out") if out else _writable_html_path(settings.data_dir / REPORT_PAGE)
        if export_dir is None and not replace:
            _keep_model(out)
        dataset, source = _dataset(store, export_dir)
        crawl = _crawl_frame(store)
        hashtags = _top_hashtags(store)
        labels = dataset.set_index(dataset["video_id"].astype(str))["is_viral"] if export_dir is not None else None
        growth = growth_by_age(play_snapshots(store), labels)
        safe_url = store.safe_url
    figures_dir = report_figures_dir(out)
    figures_dir.mkdir(parents=True, exist_ok=True)
    relative_dir = os.path.relpath(figures_dir, out.parent)
    model = model_section(
        run_dir,
        export_dir,
        settings.data_dir,
        lambda specs: _figures_html(specs, figures_dir, relative_dir),
    )
    page = _page(
        _figures_html(figure_specs(dataset, crawl, hashtags), figures_dir, relative_dir),
        _growth_section(growth, _figures_html(growth_specs(growth), figures_dir, relative_dir), labels is not None),
        model,
        dataset,
        crawl,
        source=source,
        database=safe_url,
        export_dir=export_dir,
    )
    write_text_atomically(out, page)  # a scratch file of its own: two builds at once each land a whole page
    return out


def _writable_html_path(out: Path, given_as: str | None = None) -> Path:
    """``out`` once its folder exists and nothing but a file could be there: checked before the work.
    ``given_as``: the option that named it, for the error; none for the data dir's own page."""
    named = f"{given_as} {out}" if given_as else f"the report page {out} (in the data dir; --out writes elsewhere)"
    if out.is_dir():
        raise ConfigError(f"{named} is a folder: name the HTML file to write (e.g. {out / 'report.html'})")
    if out.is_file() and not _holds_a_page(out):
        raise ConfigError(
            f"{named} is a file that holds no HTML page (the corpus's database was overwritten so): name the "
            "page to write, a new file or an earlier report"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{named}: cannot make its folder ({exc})") from None
    if not os.access(out.parent, os.W_OK):
        raise ConfigError(f"{named}: its folder is not writable")
    return out


def _holds_a_page(path: Path) -> bool:
    with path.open("rb") as file:
        head = file.read(64).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or not head  # empty: nothing to lose


def _keep_model(out: Path) -> None:
    """Refuse to write a page without a model section over one that has it (the demo's, an earlier
    ``corpus report --export``): the model's results would be gone without a word."""
    page = out.read_text(encoding="utf-8", errors="replace") if out.is_file() else ""
    if HEADING not in page:
        return
    named = re.search(rf'<meta name="{EXPORT_META}" content="([^"]*)">', page)
    export = shlex.quote(html.unescape(named.group(1))) if named else "EXPORT"
    raise ConfigError(
        f"{out} shows a model's results, which a report without --export drops: `corpus report --export {export}` "
        "rebuilds it with them (--replace drops them, --out FILE writes another page)"
    )


@functools.cache
def _installed(fonts: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``fonts`` this machine has (naming a missing one makes matplotlib warn at every figure)."""
    known = {entry.name for entry in font_manager.fontManager.ttflist}
    return tuple(font for font in fonts if font in known)


def _figures_html(specs: list[FigureSpec], figures_dir: Path, relative_dir: str) -> str:
    """Draw each figure, write its PNG into ``figures_dir`` and return the figures embedded as data URIs.

    Hashtags and captions are often Chinese, Japanese, Korean or emoji: the fonts for them that are
    installed back matplotlib's own, and a glyph no font has is drawn as a box without one warning per
    character."""
    parts = []
    for spec in specs:
        with (
            matplotlib.rc_context({"font.family": ["DejaVu Sans", *_installed(FALLBACK_FONTS)]}),
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
            figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
            spec.draw(figure)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png")
        with replacing(figures_dir / f"{spec.stem}.png") as partial:  # `corpus browse` may be serving it
            partial.write_bytes(buffer.getvalue())
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        parts.append(
            f'<figure><img alt="{html.escape(spec.title)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{html.escape(spec.title)} (<a href="{html.escape(quote(relative_dir))}/{spec.stem}.png">'
            f"{spec.stem}.png</a>)</figcaption></figure>"
        )
    return "".join(parts)


def _growth_section(growth: GrowthByAge, figures: str, labelled: bool) -> str:
    """Plays by age since posting, or a note saying why there is nothing (yet) to draw."""
    heading = '<h2 id="growth-by-age">Growth by age since posting</h2>'
    if not growth.snapshots:
        return f'{heading}<p class="note">No stats snapshot of a video with a known posting time yet.</p>'
    population = "the export's videos, plays split by is_viral" if labelled else "every video with a known posting time"
    intro = (
        f"<p>{growth.videos:,} videos ({population}), {growth.snapshots:,} stats snapshots, "
        f"{growth.re_observed:,} videos re-observed (snapshots in two age bins or more). A video counts once per age "
        "bin, with its latest snapshot there.</p>"
    )
    note = (
        ""
        if growth.re_observed
        else '<p class="note">No re-observations yet: every video was seen in one age bin only, so there are '
        "no growth curves. Run <code>corpus track</code> to re-observe videos on an age schedule.</p>"
    )
    table = growth.table.to_html(float_format=lambda v: f"{v:,.1f}", na_rep="-", classes="growth")
    return f"{heading}{intro}{note}{table}{figures}"


def _dataset(store: Store, export_dir: Path | None) -> tuple[pd.DataFrame, str]:
    """The labelled rows to describe, and a sentence naming where they come from."""
    if export_dir is not None:
        manifest, rows = read_export(export_dir)
        return rows, (
            f"export {manifest['name']} v{manifest['version']} ({len(rows)} videos, made for the "
            f"{manifest['label']} label)"
        )
    with store.consistent_read() as reader:
        rows, _ = load_dataset(reader)
    if not rows.empty:
        rows = rows.join(fit_labels(rows)[0])
    return rows, f"the {len(rows)} videos an export would take now (paper labels fitted on them)"


def _crawl_frame(store: Store) -> pd.DataFrame:
    crawl = crawl_history(store)
    for column in ("first_seen_at", "downloaded_at"):
        crawl[column] = pd.to_datetime(crawl[column], utc=True)
    return crawl


def _top_hashtags(store: Store) -> pd.Series:
    top = top_hashtags(store, TOP_HASHTAGS)
    return pd.Series(top["videos"].to_numpy(), index=top["name"].to_numpy(), dtype="int64")


def _page(
    figures: str,
    growth_section: str,
    model: str,
    dataset: pd.DataFrame,
    crawl: pd.DataFrame,
    *,
    source: str,
    database: str,
    export_dir: Path | None,
) -> str:
    table = engagement_table(dataset).to_html(float_format=lambda v: f"{v:,.1f}", na_rep="-", classes="engagement")
    viral = int(dataset["is_viral"].sum()) if "is_viral" in dataset else 0
    summary = [
        ("videos discovered", len(crawl)),
        ("videos downloaded", int(crawl["downloaded_at"].notna().sum())),
        ("videos described below", len(dataset)),
        ("is_viral = 1", viral),
        ("is_viral = 0", len(dataset) - viral),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:,}</td></tr>" for k, v in summary)
    generated = utcnow().isoformat(timespec="seconds")
    made_from = (
        f'<meta name="{EXPORT_META}" content="{html.escape(str(Path(export_dir).resolve()))}">\n' if export_dir else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tiktok-corpus report</title>
{made_from}<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
figure {{ margin: 2em 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; }}
.note {{ background: #fff8e1; border-left: 4px solid #f0ad4e; padding: 0.5em 1em; }}
.verdict {{ padding: 0.5em 1em; border-left: 4px solid; }}
.verdict.beats {{ background: #e8f5e9; border-color: #2e7d32; }}
.verdict.does-not-beat {{ background: #fdecea; border-color: #c62828; }}
.posters {{ display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }}
.poster-card {{ width: 160px; font-size: 0.85em; overflow-wrap: anywhere; }}
.poster-card img {{ width: 160px; height: auto; }}
</style></head><body>
<h1>tiktok-corpus report</h1>
<p>Generated {html.escape(generated)} by tiktok-corpus {html.escape(__version__)} from
<code>{html.escape(database)}</code>; dataset figures describe {html.escape(source)}.</p>
<table>{rows}</table>
<h2>Engagement metrics</h2>{table}
<h2>Figures</h2>{figures}
{growth_section}
{model}
</body></html>
"""
