"""The replica served by another process, for benchmarks: a real site never shares the client's CPU
(or its GIL), so neither the contender nor its baseline pays for the server's work.

:func:`served_replica` runs ``corpus replica serve``. :func:`counted_replica` runs the same
:class:`~tiktok_corpus.replica.Replica` from this file (``python bench/_replica.py``), which also
answers on its stdin: ``stats`` prints its request counters as one JSON line, ``signing MODE``
switches what its APIs demand. The replica keeps those counters in-process only, so a benchmark that
counts requests per route needs this little line protocol; nothing in the product changes for it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class CountedReplica:
    """A metadata-only replica in another process whose request counters can be read while it serves."""

    base_url: str
    pid: int
    proc: subprocess.Popen

    def _ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def requests(self) -> Counter:
        """Requests served so far, per route (``feed_page``, ``video_page``, ``recommend``, ``related``...),
        plus ``refused:REASON`` for API calls refused for their signature."""
        answer = json.loads(self._ask("stats"))
        return Counter(answer["requests"]) + Counter({f"refused:{k}": v for k, v in answer["refused"].items()})

    def set_signing(self, mode: str) -> None:
        if self._ask(f"signing {mode}").strip() != mode:
            raise RuntimeError(f"the replica did not switch to signing {mode}")


@contextlib.contextmanager
def counted_replica(videos: int, seed: int = 0, signing: str = "none") -> Iterator[CountedReplica]:
    """A :class:`CountedReplica` serving ``videos`` without media, stopped afterwards."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--videos", str(videos), "--seed", str(seed), "--signing", signing],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise RuntimeError("the counted replica did not print its URL")
        yield CountedReplica(base_url, proc.pid, proc)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # end of input: it stops serving
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=30)


def _serve_counted() -> None:
    """``python bench/_replica.py``: serve until stdin ends, answering ``stats`` and ``signing MODE``."""
    from tiktok_corpus.replica import Replica, ReplicaConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--signing", default="none")
    args = parser.parse_args()
    with Replica(ReplicaConfig(videos=args.videos, seed=args.seed, media=False, signing=args.signing)) as replica:
        print(replica.base_url, flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "stats":
                stats = replica.stats
                print(json.dumps({"requests": stats.requests, "refused": stats.refused_signatures}), flush=True)
            elif command == "signing":
                replica.set_signing(argument)
                print(replica.signing, flush=True)


if __name__ == "__main__":
    _serve_counted()
