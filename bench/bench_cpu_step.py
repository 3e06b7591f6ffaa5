"""One CPU training step of the paper's model, with the per-tensor Adam loop and with fused Adam.

Baseline (same run): ``torch.optim.Adam`` as the paper's loop builds it on the CPU (one tensor at a
time). Candidate: ``fused=True``, what ``corpus train`` builds on the CPU now. Each line times the
optimizer step alone and the whole step (forward, BCE loss, backward, optimizer) at the demo's clip
size (8 frames of 16x16) and the paper's (32 of 112x112), batch 8, and checks that from the same
gradients both optimizers make the same update to float32 rounding (over several steps the runs part
further, as any change of rounding makes them: Adam scales a near-zero gradient's noise up to ``lr``).

    .venv/bin/python bench/bench_cpu_step.py [--steps 5] [--paper-size]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from tiktok_corpus.train.model import build_model


def _time_steps(model, optimizer, clips, targets, steps: int) -> tuple[float, float]:
    """Median seconds of the optimizer step alone and of the whole step, after one warm-up step."""
    whole, update = [], []
    for _ in range(steps + 1):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(model(clips), targets).backward()
        stepped = time.perf_counter()
        optimizer.step()
        done = time.perf_counter()
        whole.append(done - started)
        update.append(done - stepped)
    return sorted(update[1:])[steps // 2], sorted(whole[1:])[steps // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--paper-size", action="store_true", help="also time 32x112x112 clips (slow on a CPU)")
    args = parser.parse_args()
    torch.manual_seed(0)
    sizes = [(8, 16)] + ([(32, 112)] if args.paper_size else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for frames, size in sizes:
        clips = torch.rand(8, 3, frames, size, size)
        targets = torch.randint(0, 2, (8,)).float()
        base = build_model()
        base.eval()  # no dropout: the timings do not depend on the masks drawn
        results = {}
        for name, fused in (("per-tensor Adam", None), ("fused Adam", True)):
            model = copy.deepcopy(base)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
            results[name] = _time_steps(model, optimizer, clips, targets, args.steps)
        for name, (update, whole) in results.items():
            print(f"{frames}x{size}x{size}  {name:16s} optimizer {update * 1e3:7.1f} ms   step {whole * 1e3:8.1f} ms")
    drift = _update_difference(build_model())
    print(f"largest difference of one update from the same gradients: {drift:.2e} (float32 epsilon 1.19e-07)")


def _update_difference(model) -> float:
    """The largest weight difference after one step of each optimizer from the same gradients."""
    twins = [model, copy.deepcopy(model)]
    generator = torch.Generator().manual_seed(0)
    for weight, twin in zip(twins[0].parameters(), twins[1].parameters(), strict=True):
        weight.grad = torch.randn(weight.shape, generator=generator)
        twin.grad = weight.grad.clone()
    torch.optim.Adam(twins[0].parameters(), lr=1e-3).step()
    torch.optim.Adam(twins[1].parameters(), lr=1e-3, fused=True).step()
    return max((a - b).abs().max().item() for a, b in zip(twins[0].parameters(), twins[1].parameters(), strict=True))


if __name__ == "__main__":
    main()
