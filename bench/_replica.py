"""The replica served by another process, for benchmarks: a real site never shares the client's CPU
(or its GIL), so neither the contender nor its baseline pays for the server's work."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

CORPUS = Path(sys.executable).with_name("corpus")


@contextlib.contextmanager
def served_replica(videos: int, seed: int = 0, *, media: bool = True) -> Iterator[tuple[str, int]]:
    """(base URL, pid) of ``corpus replica serve``, stopped afterwards; ``media=False`` serves metadata only."""
    proc = subprocess.Popen(
        [
            str(CORPUS),
            "replica",
            "serve",
            "--videos",
            str(videos),
            "--seed",
            str(seed),
            "--media" if media else "--no-media",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise RuntimeError("corpus replica serve did not print its URL")
        yield base_url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
