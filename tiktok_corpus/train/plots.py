"""The run's figures: loss curves (paper Fig. 5/6), confusion matrix (Fig. 8), best/worst strip (Fig. 7)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..posters import poster_frames  # noqa: E402


def loss_curves(history: pd.DataFrame, path: Path, x_label: str = "epoch") -> Path:
    figure, axes = plt.subplots(figsize=(6, 4))
    marker = "o" if len(history) <= 50 else None  # boosting rounds run to hundreds
    axes.plot(history["epoch"], history["train_loss"], marker=marker, label="train")
    axes.plot(history["epoch"], history["val_loss"], marker=marker, label="validation")
    axes.set(xlabel=x_label, ylabel="loss", title="Training and validation loss")
    axes.legend()
    return _save(figure, path)


def confusion(matrix: list[list[int]], threshold: float, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.imshow(matrix, cmap="Blues")
    for row in range(2):
        for col in range(2):
            axes.text(col, row, str(matrix[row][col]), ha="center", va="center", fontsize=14)
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["not viral", "viral"],
        yticklabels=["not viral", "viral"],
        xlabel="predicted",
        ylabel="true",
        title=f"Test confusion matrix (threshold {threshold:.2f})",
    )
    return _save(figure, path)


def best_worst_strip(test: pd.DataFrame, export_root: Path, path: Path) -> Path:
    """The three highest- and three lowest-scored test videos as they look: each one's poster frame (at
    its own aspect ratio, cached in ``EXPORT/cache/posters``), its score and its true target."""
    ranked = test.sort_values("score", ascending=False)
    picks = pd.concat([ranked.head(3), ranked.tail(3)]).drop_duplicates("video_id")
    sources = [(export_root / str(row.file), _sha256(row)) for row in picks.itertuples(index=False)]
    posters = poster_frames(sources, export_root / "cache" / "posters")
    figure, axes = plt.subplots(1, len(picks), figsize=(2.2 * len(picks), 3.2), squeeze=False)
    for axis, row, poster in zip(axes[0], picks.itertuples(index=False), posters):
        if poster is None:
            axis.text(0.5, 0.5, "no frame", ha="center", va="center", transform=axis.transAxes, color="grey")
        else:
            axis.imshow(plt.imread(poster))
        axis.set_title(f"{row.video_id}\nscore {row.score:.2f} / true {row.target:g}", fontsize=8)
        axis.axis("off")
    figure.suptitle("Highest (left) and lowest (right) scored test videos")
    return _save(figure, path)


def _sha256(row) -> str | None:
    value = getattr(row, "sha256", None)
    return value if isinstance(value, str) and len(value) == 64 else None


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
