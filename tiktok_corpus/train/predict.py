"""Score video files with a trained run, through exactly the preprocessing evaluation used."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from .._files import read_json_object
from ..config import PAPER_MIN_FRAMES
from ..errors import ConfigError, CorpusError, DiskFull, MediaError
from ..export.format import read_manifest
from ..export.runs import trained_on_export
from ..features.options import DEFAULT_DEVICE
from ..validate.rules import Rules, classify
from .checkpoints import load_run_model
from .clips import eval_start, read_clip
from .device import resolve_device
from .proxies import encode_proxy
from .scoring import forward_clips


def predict(paths: Iterable[Path], run_dir: Path, device: str = DEFAULT_DEVICE) -> Iterator[dict]:
    """One dict per file: ``{"path", "score", "label", "threshold", "warning"}`` or ``{"path", "error",
    "message"}``.

    Each file is probed as ``corpus validate`` probes a download: one it would call ``corrupt`` (a cut
    download, whose decodable part ffmpeg would encode without a word) or not a video (no video stream,
    tiny frames, no duration) yields an error line, under that name; one with fewer frames than the run's
    export admitted is scored, with a ``warning`` saying so. Each file then becomes a proxy with the run's
    size (the same encoder as the training cache, so the same pixels) and is scored on the run's
    evaluation clips. ``label`` uses the threshold tuned on validation (binary runs; null for continuous
    ones, and for a run stopped before its report, which has no tuned threshold). A bad file yields an
    error line; the rest go on.
    """
    run_dir = Path(run_dir)
    saved = run_dir / "config.json"  # read first: a gbdt run has no best.pt to load, and is no network's
    _refuse_other_models(run_dir, read_json_object(saved).get("model", "r2plus1d") if saved.is_file() else "r2plus1d")
    target = resolve_device(device)
    model, config = load_run_model(run_dir, target)
    _refuse_other_models(run_dir, config.model)  # a fusion run without its config.json
    metrics_path = run_dir / "metrics.json"
    threshold = read_json_object(metrics_path)["model"]["threshold"] if metrics_path.is_file() else None
    rules = Rules(min_frames=_trained_min_frames(run_dir, config.export_dir))
    with tempfile.TemporaryDirectory(prefix="corpus-predict-") as scratch:
        for number, path in enumerate(paths):
            path, proxy = Path(path), Path(scratch) / f"{number}.mp4"
            try:
                if path.is_dir():
                    raise MediaError(f"{path} is a directory: name the video files in it", kind="not_a_file")
                if not path.is_file():
                    raise MediaError(f"{path}: no such file", kind="missing")
                warning = _checked(path, rules)
                score = _score(
                    model, encode_proxy(path, proxy, config.size), config.frames, config.eval_clips, target, config.amp
                )
            except DiskFull:
                raise  # not the file's fault: every file after it would fail alike
            except CorpusError as exc:
                yield {"path": str(path), "error": exc.kind, "message": exc.message}
                continue
            finally:  # one file's proxy at a time: thousands of them filled a small temporary folder
                proxy.unlink(missing_ok=True)
            label = None if threshold is None else int(score >= threshold)
            yield {"path": str(path), "score": score, "label": label, "threshold": threshold, "warning": warning}


def _refuse_other_models(run_dir: Path, kind: object) -> None:
    if kind != "r2plus1d":
        raise ConfigError(
            f"{run_dir} is a {kind} run: it scores the export's rows from their feature tables, "
            "not loose video files; predict scores runs of the paper's network"
        )


def _trained_min_frames(run_dir: Path, recorded_export: Path) -> int:
    """The fewest frames a video of the run's export had (its ``min_frames``); the paper's where the
    export is no longer at hand."""
    export = trained_on_export(run_dir, recorded_export)
    selection = read_manifest(export).get("selection", {}) if export is not None else {}
    return int(selection.get("min_frames", PAPER_MIN_FRAMES))


def _checked(path: Path, rules: Rules) -> str | None:
    """Refuse a file validation would not admit; a warning for one only shorter than the run's videos."""
    from ..media import as_corrupt, probe  # here, not at the top: loading a run needs no PyAV

    try:
        media = probe(path)
    except MediaError as exc:
        raise as_corrupt(exc) from None
    outcome, reason = classify(media, rules)
    if outcome == "too_short":
        return f"{reason}: shorter than every video the run was trained on (the clip is padded)"
    if outcome != "valid":
        raise MediaError(f"{path}: {reason}", kind=outcome)
    return None


@torch.no_grad()
def _score(model, proxy: Path, clip_frames: int, eval_clips: int, device: torch.device, amp: bool) -> float:
    starts = [eval_start(proxy, clip_frames, eval_clips, n) for n in range(eval_clips)]
    clips, valid = zip(*(read_clip(proxy, clip_frames, start=s) for s in starts))
    logits = forward_clips(model, torch.stack(clips), torch.tensor(valid), device, amp and device.type == "cuda")
    return float(torch.sigmoid(logits).mean())
