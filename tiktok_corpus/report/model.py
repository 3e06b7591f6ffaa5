"""The report's model section: a training run's metrics beside its baselines with the verdict, its
curves per epoch, the confusion matrix at both thresholds, the ROC curve (or predicted vs. true), the
best- and worst-scored test videos as poster frames, and an ablation when one was run.

A run directory (``corpus train``, any model kind) holds ``metrics.json`` (train/metrics.py
``evaluate``), ``history.csv`` (one row per epoch) and ``predictions.parquet`` (``video_id, split,
target, score``); that is all this reads, so it works for every model that writes those.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from .._files import contained_file, newest_written
from ..errors import ConfigError
from ..export.format import read_export
from ..export.runs import run_export_dir, run_metrics
from ..posters import poster_frames
from ..speed import speed_line
from .figures import FigureSpec, no_data, plain

HEADING = '<h2 id="model">Model</h2>'  # how a page with a model section is told apart (report/build.py)
THRESHOLDS = {"at_0.5": "threshold 0.5", "at_tuned": "tuned threshold"}
BEST_WORST = 3  # videos shown at each end of the test ranking
CAPTION_CHARS = 120  # of a best/worst video's caption
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# history.csv columns that are bookkeeping, not curves
NOT_CURVES = ("lr", "seconds", "train_seconds", "train_clips_per_s", "loader_wait_s", "peak_gpu_mem_gib")
# What a history.csv counts its rows in: the network's epochs, a gbdt run's boosting rounds.
STEP_COLUMNS = ("epoch", "round")


def _p_value(value) -> str:
    """Three significant digits: a p-value of 0.0004 is not 0.000."""
    return "-" if value is None or pd.isna(value) else f"{value:.3g}"


P_VALUES = {"p-value": _p_value, "paired p": _p_value}  # the tables' p-value columns


def model_section(
    run_dir: Path | None, export_dir: Path | None, data_dir: Path, render: Callable[[list[FigureSpec]], str]
) -> str:
    """The section's HTML ("" when there is neither a run nor an ablation); ``render`` draws figure specs
    into embedded images (the page's one way of showing a figure); posters are cached in the corpus's
    ``data_dir``."""
    ablation = _ablation_section(export_dir)
    if run_dir is None:
        return f"{HEADING}{ablation}" if ablation else ""
    metrics, history, predictions = read_run(run_dir)
    run = metrics.get("run", {})
    run_export = export_dir if export_dir is not None else run_export_dir(run_dir)  # build_report checked it
    _, rows = read_export(run_export)
    verdict_class = "beats" if metrics.get("beats_baselines") else "does-not-beat"
    collapsed = '<p class="note">The model collapsed to a constant prediction.</p>' if metrics.get("collapsed") else ""
    table = metrics_table(metrics).to_html(
        float_format=lambda v: f"{v:.3f}", formatters=P_VALUES, na_rep="-", classes="model-metrics", border=0
    )
    about = (
        f"export {run.get('export_name', run_export.name)} v{run.get('export_version', '?')} ({metrics['task']} "
        f"task, {metrics['n_test']} test videos{_from_authors(metrics)}, {_best_step(run)})"
    )
    speed = f"<p>{html.escape(speed_line(metrics['speed']))}.</p>" if "speed" in metrics else ""
    return (
        f"{HEADING}<p>Run <code>{html.escape(str(run_dir))}</code> on {html.escape(about)}.</p>"
        f'{speed}{collapsed}<p class="verdict {verdict_class}"><b>Verdict:</b> {html.escape(metrics["verdict"])}</p>'
        f"<h3>Test metrics beside the baselines</h3>{table}{_threshold_note(metrics)}"
        f"{render(model_specs(metrics, history, predictions))}"
        f"{best_worst_html(predictions, run_export, rows, data_dir)}{ablation}"
    )


def _threshold_note(metrics: dict) -> str:
    """Which threshold the table's accuracy and F1 are taken at: a reader's 0.5 would misread them."""
    if metrics["task"] != "binary":
        return ""
    return (
        '<p class="note">Accuracy, precision, recall and F1 are each row\'s at its own threshold, tuned on the '
        "validation split (0.5 where the split cannot tune one: a constant score, as the majority baseline's, "
        f"or a split of one class); {html.escape(metrics['main_metric'])} does not depend on one.</p>"
    )


def _from_authors(metrics: dict) -> str:
    """Where test videos share authors: in how many clusters their intervals and tests count them (a
    video of no known author is one of its own)."""
    clusters = metrics.get("n_test_clusters")
    return f" in {clusters} clusters by author" if clusters else ""


def _best_step(run: dict) -> str:
    """The epoch (network) or boosting round (gbdt) whose model was kept."""
    if "best_iteration" in run and "best_epoch" not in run:
        return f"best round {run['best_iteration']}"
    return f"best epoch {run.get('best_epoch', '-')}"


def metrics_table(metrics: dict) -> pd.DataFrame:
    """One row per model (the trained one first, then each baseline): the main metric, its confidence
    interval where the run has one, the p-value against chance, the figures at the tuned threshold
    (binary) or the errors (continuous), and on each baseline's row the model's gain over it with its
    paired p-value (runs made before the paired comparison have none)."""
    main = metrics["main_metric"]
    binary = metrics["task"] == "binary"
    rows = {}
    for name, values in {"model": metrics["model"], **metrics["baselines"]}.items():
        interval = values.get(f"{main}_ci")
        row: dict[str, object] = {
            main: values.get(main),
            "95% CI": f"{interval[0]:.3f} - {interval[1]:.3f}" if interval else None,
            "p-value": values.get("p_value"),
        }
        if binary:
            tuned = values.get("at_tuned", {})
            row |= {key: tuned.get(key) for key in ("accuracy", "precision", "recall", "f1")}
        else:
            row |= {key: values.get(key) for key in ("mae", "spearman")}
        paired = metrics.get("paired", {}).get(name)
        if paired and paired["difference"] is not None:
            low, high = paired["difference_ci"]
            row["model's gain (95% CI)"] = f"{paired['difference']:+.3f} ({low:+.3f} - {high:+.3f})"
            row["paired p"] = paired["p_value"]
        row["note"] = values.get("note") or values.get(f"{main}_note")
        rows[name] = row
    # Transposed, every column holds objects, whose None to_html writes as "None", not as its na_rep.
    return pd.DataFrame(rows).T.dropna(axis=1, how="all").infer_objects()


def model_specs(metrics: dict, history: pd.DataFrame, predictions: pd.DataFrame) -> list[FigureSpec]:
    """The model section's figures: curves per epoch, the confusion matrices (binary) and the test
    ROC curve (binary) or predicted against true (continuous)."""
    test = predictions[predictions["split"] == "test"]
    specs = [FigureSpec("model_curves", "Loss and metrics per epoch", lambda fig: _curves(fig, history))]
    if metrics["task"] == "binary":
        specs += [
            FigureSpec(
                "model_confusion",
                "Test confusion matrix at both thresholds",
                lambda fig: _confusions(fig, metrics["model"]),
            ),
            FigureSpec("model_roc", "Test ROC curve", lambda fig: _roc(fig.subplots(), test)),
        ]
    else:
        specs.append(
            FigureSpec("model_scatter", "Predicted vs. true (test)", lambda fig: _scatter(fig.subplots(), test))
        )
    return specs


def best_worst_html(predictions: pd.DataFrame, export_dir: Path, rows: pd.DataFrame, data_dir: Path) -> str:
    """The highest- and lowest-scored test videos as poster frames (embedded, at their aspect ratio),
    each with its score, true target and caption; posters cached in ``data_dir/posters``."""
    ranked = predictions[predictions["split"] == "test"].sort_values("score", ascending=False)
    picks = pd.concat([ranked.head(BEST_WORST), ranked.tail(BEST_WORST)]).drop_duplicates("video_id")
    info = rows.set_index(rows["video_id"].astype(str))
    known = picks[picks["video_id"].astype(str).isin(info.index)]
    meta = info.loc[list(known["video_id"].astype(str))]
    files = [_shareable_file(export_dir / str(f), (export_dir, data_dir)) for f in meta["file"]]
    sources = [(f, s if isinstance(s, str) else None) for f, s in zip(files, meta["sha256"]) if f is not None]
    made = iter(poster_frames(sources, data_dir / "posters"))
    posters = [None if f is None else next(made) for f in files]
    cards = []
    for (video_id, score, target), poster, caption in zip(
        known[["video_id", "score", "target"]].itertuples(index=False), posters, meta["desc"]
    ):
        image = (
            f'<img alt="poster of {html.escape(str(video_id))}" src="data:image/jpeg;base64,'
            f'{base64.b64encode(poster.read_bytes()).decode("ascii")}">'
            if poster
            else '<div class="no-poster">no frame</div>'
        )
        cards.append(
            f"<div class=poster-card>{image}<div><b>{html.escape(str(video_id))}</b><br>score {score:.3f}, "
            f"true {target:g}<br><small>{html.escape(caption[:CAPTION_CHARS] if isinstance(caption, str) else '')}"
            "</small></div></div>"
        )
    return (
        '<figure id="best-worst"><div class="posters">' + "".join(cards) + "</div>"
        f"<figcaption>Highest (first {BEST_WORST}) and lowest (last {BEST_WORST}) scored test videos</figcaption>"
        "</figure>"
    )


def _ablation_section(export_dir: Path | None) -> str:
    """The newest ablation of the export (``EXPORT/ablations/<time>/ablation.json`` with ``rows``,
    ``main_metric`` and ``figure``) as a table and its importance plot; "" when none was run."""
    found = newest_written((Path(export_dir) / "ablations").glob("*/ablation.json")) if export_dir else None
    if found is None:
        return ""
    ablation = json.loads(found.read_text(encoding="utf-8"))
    main = ablation.get("main_metric", "metric")
    table = pd.DataFrame(
        [
            {
                "model": row.get("name"),
                "modalities": ", ".join(row.get("modalities") or []),
                main: row.get("metric"),
                "95% CI": "{:.3f} - {:.3f}".format(*row["ci"]) if row.get("ci") else "-",
                "oracle": (ablation.get("oracles") or {}).get(row.get("name"), np.nan),
                "paired p": row.get("paired_p_value"),
                "beats baselines": {True: "yes", False: "no"}.get(row.get("beats_baselines"), "-"),
                "verdict": row.get("verdict") or "-",
            }
            for row in ablation.get("rows", [])
        ]
    )
    if table.get("paired p", pd.Series()).isna().all():  # an ablation made before the paired comparison
        table = table.drop(columns="paired p", errors="ignore")
    importances = ablation.get("importances") or {}
    credibility = (  # ablations made before importances were judged say nothing of it
        f'<p id="ablation-importances">Importances: {html.escape(str(importances["credibility"]))}.</p>'
        if "credibility" in importances
        else ""
    )
    caption = "Modality importance" if importances.get("credible", True) else "The lines; no importance ranked"
    figure = _ablation_figure(found.parent, ablation.get("figure"))
    image = (
        f'<figure id="ablation-figure"><img alt="ablation" src="data:image/png;base64,'
        f'{base64.b64encode(figure).decode("ascii")}"><figcaption>{caption}</figcaption></figure>'
        if figure
        else ""
    )
    return (
        f'<h3 id="ablation">What drives virality in this corpus (ablation {html.escape(found.parent.name)})</h3>'
        "<p>A gbdt model per line: each modality alone, all but one, all. The oracle (replica corpora only) is "
        "the ROC-AUC of the modality's true latent signal on the same test rows.</p>"
        + credibility
        + table.to_html(
            float_format=lambda v: f"{v:.3f}", formatters=P_VALUES, na_rep="-", classes="ablation", index=False
        )
        + image
    )


def _shareable_file(file: Path, roots: tuple[Path, ...]) -> Path | None:
    """``file`` resolved when it lies in one of ``roots``, else None. An export travels, and what its
    rows or its ``ablation.json`` name is embedded in a report people share: a path out of them
    (absolute, ``..``, a link) is never read."""
    for root in roots:
        with contextlib.suppress(FileNotFoundError):
            return contained_file(root, file.resolve())
    return None


def _ablation_figure(folder: Path, name: object) -> bytes | None:
    """The ablation's importance plot: the bytes of a PNG inside its own folder (links followed), or
    None; a file that is no PNG is never embedded."""
    if not isinstance(name, str) or not name:
        return None
    path = _shareable_file(folder / name, (folder,))
    if path is None or path.suffix.lower() != ".png":
        return None
    data = path.read_bytes()
    return data if data.startswith(PNG_SIGNATURE) else None


def read_run(run_dir: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """``(metrics, history, predictions)`` of a run directory (history empty when it has none)."""
    run_dir = Path(run_dir)
    metrics = run_metrics(run_dir)
    history_file, predictions_file = run_dir / "history.csv", run_dir / "predictions.parquet"
    try:
        history = pd.read_csv(history_file) if history_file.is_file() else pd.DataFrame()
        return metrics, history, pd.read_parquet(predictions_file)
    except (OSError, ValueError) as exc:  # missing, cut short, not a table (pyarrow's errors are ValueErrors)
        raise ConfigError(
            f"{run_dir}: its {history_file.name} or {predictions_file.name} cannot be read ({exc}); train the "
            "run again (another --out)"
        ) from None


def _curves(fig: Figure, history: pd.DataFrame) -> None:
    step = next((c for c in STEP_COLUMNS if c in history.columns), None)
    curves = [
        c
        for c in history.columns
        if c not in (*NOT_CURVES, *STEP_COLUMNS) and pd.api.types.is_numeric_dtype(history[c])
    ]
    if history.empty or not curves or step is None:
        return no_data(fig.subplots())
    losses = [c for c in curves if "loss" in c]
    others = [c for c in curves if c not in losses]
    axes = fig.subplots(1, 2 if losses and others else 1, squeeze=False)[0]
    for ax, columns, label in zip(axes, [c for c in (losses, others) if c], ("loss", "metric")):
        for column in columns:
            ax.plot(history[step], history[column], marker="o", label=plain(column))
        ax.set_xlabel(step)
        ax.set_ylabel(label if columns is others or not others else "loss")
        ax.legend()


def _confusions(fig: Figure, model: dict) -> None:
    axes = fig.subplots(1, 2)
    for ax, (key, title) in zip(axes, THRESHOLDS.items()):
        at = model.get(key)
        if not at:
            no_data(ax)
            continue
        matrix = np.asarray(at["confusion_matrix"])
        ax.imshow(matrix, cmap="Blues")
        for (row, col), count in np.ndenumerate(matrix):
            ax.text(col, row, str(count), ha="center", va="center", fontsize=13)
        ax.set_xticks([0, 1], ["not viral", "viral"])
        ax.set_yticks([0, 1], ["not viral", "viral"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} ({at['threshold']:.2f})", fontsize=10)


def _roc(ax: Axes, test: pd.DataFrame) -> None:
    y, scores = test["target"].to_numpy(dtype=float), test["score"].to_numpy(dtype=float)
    if not (y == 1).any() or not (y == 0).any():
        return no_data(ax)
    # One point per distinct score: a tie is crossed diagonally, as the table's ROC-AUC counts it (row by
    # row, a constant model's curve was a perfect one or the worst, by the rows' order).
    fpr, tpr, _ = roc_curve(y, scores)
    ax.plot(fpr, tpr, label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend()


def _scatter(ax: Axes, test: pd.DataFrame) -> None:
    if test.empty:
        return no_data(ax)
    ax.scatter(test["target"], test["score"], s=12, alpha=0.7)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("true virality_score")
    ax.set_ylabel("predicted")
