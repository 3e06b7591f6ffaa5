#!/usr/bin/env bash
# Download, into .whl/ (git-ignored), the wheels that `tiktok_corpus.train` needs beyond what a lent GPU
# machine's image already has (PyTorch, numpy, pandas, pyarrow, scikit-learn, scipy, matplotlib, rich,
# typer), plus typing-extensions, which pydantic may need newer than the image's: the same versions as
# this checkout's .venv, built for the device's Python 3.12 on x86-64. bench/gpu_check.sh installs them
# there; name .whl in the device run's `carry` (about 45 MB).
#   bash bench/device_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
PACKAGES=(av pydantic pydantic-core pydantic-settings annotated-types typing-inspection python-dotenv
    sqlalchemy ffmpeg-python future typing-extensions)

pinned=()
for package in "${PACKAGES[@]}"; do
    version="$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$package")"
    pinned+=("$package==$version")
done
# TorchCodec is built for one torch release: 0.11 for the device image's torch 2.11 (the device tool's
# KINDS.md), not this venv's. Stage 6 of bench/gpu_check.sh decodes with it, on PyAV's bundled FFmpeg.
pinned+=("torchcodec==0.11.1")
rm -rf .whl && mkdir .whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${pinned[@]}"
du -sh .whl
