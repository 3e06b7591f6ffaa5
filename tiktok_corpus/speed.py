"""How fast a training run's pass went and which side limited it: the step, or the loader feeding it.

Read from ``history.csv``'s per-epoch ``train_seconds``, ``train_clips_per_s`` and ``loader_wait_s`` (the
seconds the step waited for a batch) over the epochs after the first, which also starts the loader
workers and, on a GPU, cuDNN's plans and compilation. Outside the stages: training writes it into
metrics.json, and the CLI, the report and the demo show it.
"""

from __future__ import annotations

# A pass that waits for its loader longer than this share of its time is limited by the loader: the
# GPU goal (issue #18) asks the loop to stay within 10% of the step alone.
LOADER_BOUND_SHARE = 0.1


def training_speed(history: list[dict]) -> dict:
    """Clips/s of the training pass, the share of it spent waiting for the loader, and which side limits."""
    steady = history[1:] or history
    seconds = sum(epoch["train_seconds"] for epoch in steady)
    clips = sum(epoch["train_clips_per_s"] * epoch["train_seconds"] for epoch in steady)
    waited = sum(epoch["loader_wait_s"] for epoch in steady) / seconds if seconds else 0.0
    speed = {
        "train_clips_per_s": round(clips / seconds, 3) if seconds else None,
        "loader_wait_share": round(waited, 4),
        "limited_by": "loader" if waited > LOADER_BOUND_SHARE else "step",
        "epochs_measured": len(steady),
        "first_epoch_left_out": len(history) > 1,
    }
    peaks = [epoch["peak_gpu_mem_gib"] for epoch in steady if epoch.get("peak_gpu_mem_gib") is not None]
    return speed | ({"peak_gpu_mem_gib": max(peaks)} if peaks else {})


def speed_line(speed: dict) -> str:
    """``training_speed`` in words (what ``corpus train`` prints and the report shows)."""
    rate = "n/a" if speed["train_clips_per_s"] is None else f"{speed['train_clips_per_s']:.1f}"
    measured = speed["epochs_measured"]
    epochs = (
        f"{measured} epoch{'s' * (measured > 1)} after the first" if speed["first_epoch_left_out"] else "its only epoch"
    )
    limit = (
        "the loader limits (more --workers or faster storage may help)"
        if speed["limited_by"] == "loader"
        else "the step limits"
    )
    memory = f"; peak GPU memory {speed['peak_gpu_mem_gib']:.1f} GiB" if "peak_gpu_mem_gib" in speed else ""
    return (
        f"training: {rate} clips/s over {epochs}, waiting for the loader {speed['loader_wait_share']:.0%} "
        f"of the pass: {limit}{memory}"
    )
