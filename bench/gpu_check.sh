#!/usr/bin/env bash
# A few-minute GPU check of `corpus train`: builds a synthetic export, trains 3 epochs with
# --device cuda --amp (bf16, channels_last_3d, pinned memory, persistent workers) at the paper's
# 32x112x112 clips, and prints clips/s, GPU utilisation (nvidia-smi sampling) and peak memory.
# Run from the repository root after `pip install -e .`:  bash bench/gpu_check.sh [PYTHON]
set -euo pipefail
PYTHON="${1:-${PYTHON:-python}}"
WORK="$(mktemp -d)"
SAMPLER_PID=""
cleanup() { [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

echo "== building a synthetic export (96 videos, 288x512, 30 fps, 4 s) in $WORK"
"$PYTHON" - "$WORK/export" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "tests/train")
from conftest import build_synthetic_export, write_export
root = Path(sys.argv[1])
splits = ["train"] * 64 + ["val"] * 16 + ["test"] * 16
write_export(root, build_synthetic_export(root, splits=splits, size="288x512", fps=30, seconds=(4.0,)))
EOF

nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
    > "$WORK/gpu.csv" &
SAMPLER_PID=$!

echo "== training 3 epochs on cuda with --amp"
"$PYTHON" -c "from tiktok_corpus.cli import app; app()" train "$WORK/export" --epochs 3 --frames 32 \
    --size 112 --batch-size 32 --device cuda --amp --workers 8 --out "$WORK/run"
kill "$SAMPLER_PID"; SAMPLER_PID=""

"$PYTHON" - "$WORK" <<'EOF'
import sys
from pathlib import Path
import pandas as pd
work = Path(sys.argv[1])
history = pd.read_csv(work / "run" / "history.csv")
gpu = pd.read_csv(work / "gpu.csv", header=None, names=["util", "mem_mib"])
busy = gpu[gpu["util"] > 0]
print(history.to_string(index=False))
print(f"train clips/s (epochs after the first): {history['train_clips_per_s'].iloc[1:].mean():.1f}")
print(f"GPU utilisation: mean {gpu['util'].mean():.0f}% over {len(gpu)} samples, "
      f"mean {busy['util'].mean() if len(busy) else 0:.0f}% while busy, max {gpu['util'].max()}%")
print(f"peak memory: torch.cuda.max_memory_allocated {history['peak_gpu_mem_gib'].max():.2f} GiB, "
      f"nvidia-smi max {gpu['mem_mib'].max() / 1024:.2f} GiB")
EOF
