# The `corpus` CLI with everything it needs: Python 3.11, ffmpeg and Playwright's Chromium.
# Installed non-editable, so the migrations run from the installed package (as in production).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PLAYWRIGHT_BROWSERS_PATH=/ms-playwright \
    CORPUS_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

# CPU builds of torch first, in their own layer: no CUDA stack in the image (gigabytes smaller),
# and code changes do not reinstall them. The ranges match pyproject.toml.
RUN pip install --index-url https://download.pytorch.org/whl/cpu \
    "torch>=2.4,<=2.14.1" "torchvision>=0.19,<=0.29.1"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY tiktok_corpus ./tiktok_corpus
COPY migrations ./migrations
# Playwright's Chromium lives in PLAYWRIGHT_BROWSERS_PATH, readable by the unprivileged user below;
# --with-deps apt-installs the libraries it needs.
RUN pip install . \
    && playwright install --with-deps chromium \
    && rm -rf /var/lib/apt/lists/* /src

RUN useradd --create-home --uid 1000 corpus \
    && mkdir -p /data \
    && chown corpus:corpus /data
USER corpus
WORKDIR /data
VOLUME ["/data"]

ENTRYPOINT ["corpus"]
CMD ["--help"]
