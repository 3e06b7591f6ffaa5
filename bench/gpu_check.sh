#!/usr/bin/env bash
# Issue #18's GPU check, one prepared script for a lent machine. Device time is 15 minutes in all,
# machine start included, so the check takes about 4 minutes and at most 8.5 (each stage is capped),
# and a rerun still fits. The machine has PyTorch but none of FFmpeg, TorchCodec or this project's other
# needs: bench/device_wheels.sh puts those wheels in .whl/ here (carry it), and the training stages feed
# the unchanged train() loop with clips generated in memory (bench/gpu_loop_check.py), so nothing needs
# decoding. Each stage prints loader-only, step-only and full-loop clips/s, GPU utilisation and peak
# memory, at the paper's 32x112x112 clips and batch 32:
#   1. the defaults with --amp (bf16, channels_last_3d, deterministic cuDNN);
#   2. + --cudnn-benchmark (cuDNN's timed fastest algorithms);
#   3. + batch 64, Adam's learning rate scaled by sqrt(64 / 8);
#   4. two processes under torchrun on the one GPU (DDP over gloo: its overhead);
#   5. + --compile (torch.compile, capped: compilation can be slow).
# Then, only where ffmpeg and TorchCodec are there, the real path: export -> proxy cache -> decode.
#
#   on the device:  set -o pipefail; bash bench/gpu_check.sh 2>&1 | tee $OUT/gpu_check.log
#                   (the device tool's run with carry [".whl"] and timeout_s 540)
#   here:           bash bench/gpu_check.sh --dry-run  (the same stages on the CPU at toy sizes)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then  # this checkout's venv here; the image's python3 on the device
    PYTHON=python3
    [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi

if [ "${1:-}" = "--dry-run" ]; then
    ARGS=(--device cpu --videos 24 --epochs 2 --frames 8 --size 16 --batch-size 4 --workers 2)
    WIDE=(--batch-size 8 --lr-scaling sqrt)
    REAL=(--epochs 2 --frames 8 --size 16 --batch-size 4 --device cpu --workers 2)
    LIMIT=300
    COMPILE_LIMIT=300
else
    ARGS=(--videos 1024 --epochs 3 --frames 32 --size 112 --batch-size 32 --workers 12)
    WIDE=(--batch-size 64 --lr-scaling sqrt)
    REAL=(--epochs 3 --frames 32 --size 112 --batch-size 32 --device cuda --amp --workers 12)
    LIMIT=90  # about 40 s expected: start-up, loader and step alone, 3 epochs, evaluation
    COMPILE_LIMIT=150
fi

export PYTHONPATH=".:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
if ! "$PYTHON" -c "import tiktok_corpus.train.loop" 2>/dev/null; then
    compgen -G ".whl/*.whl" >/dev/null || { echo "the project does not import and no .whl was carried" >&2; exit 1; }
    echo "== installing the carried wheels into /tmp/corpus-site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/corpus-site .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/corpus-site"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

stage() {  # stage CAP_S TITLE COMMAND...: run one capped stage; a failure is reported, the next one runs
    local cap="$1" title="$2"
    shift 2
    echo
    echo "== $title"
    local started=$SECONDS
    timeout "$cap" "$@" || echo "!! $title: exit $? (124 = over its $cap s cap)"
    echo "-- $title: $((SECONDS - started)) s"
}

CHECK=("$PYTHON" bench/gpu_loop_check.py "${ARGS[@]}")
stage "$LIMIT" "1. the defaults with --amp" "${CHECK[@]}"
stage "$LIMIT" "2. + --cudnn-benchmark" "${CHECK[@]}" --cudnn-benchmark
stage "$LIMIT" "3. + --cudnn-benchmark, ${WIDE[*]}" "${CHECK[@]}" --cudnn-benchmark "${WIDE[@]}"
stage "$LIMIT" "4. two processes under torchrun, + --cudnn-benchmark" \
    "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node 2 bench/gpu_loop_check.py "${ARGS[@]}" \
    --cudnn-benchmark
stage "$COMPILE_LIMIT" "5. + --cudnn-benchmark --compile" "${CHECK[@]}" --cudnn-benchmark --compile

if ! command -v ffmpeg >/dev/null || ! "$PYTHON" -c "import torchcodec" 2>/dev/null; then
    echo
    echo "== the real decode path: skipped (no ffmpeg or no TorchCodec on this machine)"
    exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" - "$WORK/export" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "tests/train")
from conftest import build_synthetic_export, write_export
root = Path(sys.argv[1])
splits = ["train"] * 64 + ["val"] * 16 + ["test"] * 16
write_export(root, build_synthetic_export(root, splits=splits, size="288x512", fps=30, seconds=(4.0,)))
EOF
stage "$LIMIT" "6. the real path: proxy cache decoded by TorchCodec in the loader workers, + --cudnn-benchmark" \
    "$PYTHON" -c "from tiktok_corpus.cli import app; app()" train "$WORK/export" "${REAL[@]}" --cudnn-benchmark \
    --out "$WORK/run"
[ -f "$WORK/run/history.csv" ] && "$PYTHON" -c "
import pandas as pd, sys
history = pd.read_csv(sys.argv[1])
print(history.to_string(index=False))
print(f\"train clips/s (epochs after the first): {history['train_clips_per_s'].iloc[1:].mean():.1f}\")
" "$WORK/run/history.csv"
