"""From uint8 clips to scores: the one preprocessing and forward path of training, evaluation and predict.

Logits and losses stay on the device until a split is done, so the host never waits on the GPU
batch by batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .clips import normalize_clips


def forward_clips(
    model: nn.Module, clips, valid, device: torch.device, use_amp: bool, side: torch.Tensor | None = None
) -> torch.Tensor:
    """uint8 clips (and the fusion model's side vectors) -> logits: the one preprocessing + forward path
    of training, evaluation and predict."""
    inputs = normalize_clips(clips.to(device, non_blocking=True), valid)
    if device.type == "cuda":
        inputs = inputs.contiguous(memory_format=torch.channels_last_3d)
    extra = () if side is None or side.shape[1] == 0 else (side.to(device, non_blocking=True),)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
        return model(inputs, *extra).float()


@torch.no_grad()
def score_split(
    model: nn.Module, loader: DataLoader, device: torch.device, use_amp: bool, loss_fn=None
) -> tuple[np.ndarray, float]:
    """Per-row sigmoid scores (averaged over a row's evaluation clips) and the mean clip loss.

    Logits and the loss stay on the device until the split is done: reading them back per batch would
    make the host wait for each batch before it queues the next.
    """
    model.eval()
    n_rows = len(loader.dataset)  # type: ignore[arg-type]  # a ClipDataset has a length
    logits_seen, rows_seen = [], []
    loss_total = torch.zeros((), dtype=torch.float64, device=device)
    loss_count = 0
    for clips, valid, targets, index, side in loader:
        logits = forward_clips(model, clips, valid, device, use_amp, side)
        if loss_fn is not None:
            loss_total += loss_fn(logits, targets.to(device, non_blocking=True)).double() * len(targets)
            loss_count += len(targets)
        logits_seen.append(logits)
        rows_seen.append(index)
    sums, counts = np.zeros(n_rows), np.zeros(n_rows)
    if rows_seen:
        rows = torch.cat(rows_seen).numpy()
        np.add.at(sums, rows, torch.sigmoid(torch.cat(logits_seen)).cpu().numpy())
        np.add.at(counts, rows, 1)
    scores = np.divide(sums, counts, out=np.full(n_rows, np.nan), where=counts > 0)
    return scores, float(loss_total.item()) / max(loss_count, 1)
