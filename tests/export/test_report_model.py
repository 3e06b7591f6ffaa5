"""The report's model section from hand-made runs and ablations: what it embeds, and the text from the
data it draws (captions, column names) shown as written."""

from __future__ import annotations

import base64
import html
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tests.media_files import encode_lavfi
from tiktok_corpus.report.model import best_worst_html, model_section, model_specs

# Matplotlib reads $...$ as mathtext; this one it cannot parse.
DOLLARS = r"$\foo{$"


def _png() -> bytes:
    buffer = io.BytesIO()
    Figure(figsize=(1, 1)).savefig(buffer, format="png")
    return buffer.getvalue()


def _ablation_html(export_dir, tmp_path, figure: str) -> str:
    """The model section of an export whose newest ablation names ``figure`` as its plot."""
    folder = export_dir / "ablations" / "20240501T000000Z"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"name": "all", "modalities": ["video"], "metric": 0.6}]
    (folder / "ablation.json").write_text(json.dumps({"main_metric": "roc_auc", "figure": figure, "rows": rows}))
    return model_section(None, export_dir, tmp_path, lambda specs: "")


def test_an_ablation_shows_only_a_png_from_its_own_folder(tmp_path):
    """``ablation.json`` comes with an export from anywhere, and the report embeds its figure: a path to
    the crawler's cookies, out of the folder by ``..`` or a link, or a file that is no PNG shows nothing."""
    export_dir = tmp_path / "export"
    folder = export_dir / "ablations" / "20240501T000000Z"
    folder.mkdir(parents=True)
    cookies = tmp_path / "data" / "session" / "state.json"
    cookies.parent.mkdir(parents=True)
    cookies.write_text('{"cookies": [{"name": "tt_chain_token"}]}')
    (tmp_path / "outside.png").write_bytes(_png())
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    (folder / "cookies.png").write_text(cookies.read_text())
    (folder / "importance.png").write_bytes(_png())

    for figure in (str(cookies), "../../../data/session/state.json", "../../../outside.png", "link.png", "cookies.png"):
        page = _ablation_html(export_dir, tmp_path, figure)
        assert 'id="ablation"' in page and "base64," not in page, figure

    page = _ablation_html(export_dir, tmp_path, "importance.png")
    embedded = re.search(r'id="ablation-figure"><img alt="ablation" src="data:image/png;base64,([^"]+)"', page)
    assert embedded and base64.b64decode(embedded.group(1)) == (folder / "importance.png").read_bytes()


def test_the_roc_figure_encloses_the_area_its_table_reports_tied_scores_included():
    """Rows come in video-id order (posting order): walked row by row, a constant model's tied scores
    drew a perfect curve or the worst one by that order, beside a table's 0.5 and a "collapsed" verdict."""
    from sklearn.metrics import roc_auc_score

    targets = [1.0] * 20 + [0.0] * 80
    cases = {"constant": [0.5] * 100, "three values": [0.9] * 10 + [0.5] * 40 + [0.1] * 50}
    for name, scores in cases.items():
        for order in (1, -1):
            predictions = pd.DataFrame(
                {"video_id": [str(i) for i in range(100)], "split": "test", "target": targets, "score": scores}
            ).iloc[::order]
            [roc] = [
                spec
                for spec in model_specs({"task": "binary", "model": {}}, pd.DataFrame(), predictions)
                if spec.stem == "model_roc"
            ]
            figure = Figure()
            roc.draw(figure)
            fpr, tpr = figure.axes[0].lines[0].get_data()
            drawn = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
            reported = roc_auc_score(predictions["target"], predictions["score"])
            assert drawn == pytest.approx(reported), (name, order)


def test_a_history_column_with_dollar_signs_is_drawn_as_written():
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], DOLLARS: [0.2, 0.3]})
    predictions = pd.DataFrame({"video_id": ["1", "2"], "split": "test", "target": [0.2, 0.8], "score": [0.3, 0.7]})

    for spec in model_specs({"task": "continuous"}, history, predictions):
        figure = Figure()
        spec.draw(figure)
        figure.savefig(io.BytesIO(), format="png")  # the legend is laid out (and its text parsed) here
        legends = [text.get_text() for ax in figure.axes if ax.get_legend() for text in ax.get_legend().get_texts()]
        assert all("$" not in text or r"\$" in text for text in legends), legends


def test_a_caption_is_cut_before_it_is_escaped_and_a_missing_one_shows_nothing(tmp_path):
    caption = "x" + "&" * 150
    predictions = pd.DataFrame({"video_id": ["1", "2"], "split": "test", "target": [1.0, 0.0], "score": [0.9, 0.1]})
    rows = pd.DataFrame(
        {"video_id": ["1", "2"], "file": ["videos/1.mp4", "videos/2.mp4"], "sha256": None, "desc": [caption, np.nan]}
    )

    page = best_worst_html(predictions, tmp_path, rows, tmp_path)

    shown = re.findall(r"<small>(.*?)</small>", page)
    assert shown[0] == html.escape(caption[:120])  # whole entities: "&amp;" 119 times, none cut
    assert shown[1] == ""  # not "nan"


def test_posters_come_only_from_files_in_the_export_or_the_corpus(tmp_path):
    """An export travels: a row whose ``file`` leads out of it and out of the corpus's data dir (an
    absolute path, ``..``) names a file the shared report must not show; the corpus's own files do."""
    data_dir, outside = tmp_path / "data", tmp_path / "private"
    export_dir = data_dir / "exports" / "corpus-v1"
    export_dir.mkdir(parents=True)
    for folder, name in ((data_dir / "videos", "1.mp4"), (outside, "photo.mp4"), (outside, "2.mp4")):
        folder.mkdir(exist_ok=True)
        encode_lavfi(folder / name, "testsrc=size=64x64:rate=10:duration=1")
    predictions = pd.DataFrame(
        {"video_id": ["1", "2", "3"], "split": "test", "target": [1.0, 0.0, 0.0], "score": [0.9, 0.5, 0.1]}
    )
    rows = pd.DataFrame(
        {
            "video_id": ["1", "2", "3"],
            "file": ["../../videos/1.mp4", "../../../private/2.mp4", str(outside / "photo.mp4")],
            "sha256": None,
            "desc": ["in the corpus", "up and out", "absolute"],
        }
    )

    page = best_worst_html(predictions, export_dir, rows, data_dir)

    cards = re.findall(r"<div class=poster-card>(.*?)</small>", page)
    assert ["<img" in card for card in cards] == [True, False, False], cards
    assert page.count('<div class="no-poster">no frame</div>') == 2
