"""``corpus --help`` from a fresh interpreter, for the package in each given folder (this checkout, and a
worktree of another commit to compare with), alternated run by run.

The editable install's finder is taken out of ``sys.meta_path`` in each run, so the folder's package is
the one imported, not the one the virtual environment points at.

    python bench/bench_cli_start.py [--runs 5] FOLDER [FOLDER ...]
    git worktree add /tmp/before <rev> && python bench/bench_cli_start.py /tmp/before .
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HELP_FROM = """
import sys
root = sys.argv[1]
sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in repr(finder).lower()]
sys.path.insert(0, root)
sys.argv = ["corpus", "--help"]
import tiktok_corpus
assert tiktok_corpus.__file__.startswith(root), tiktok_corpus.__file__
from tiktok_corpus.cli import app
app(prog_name="corpus")
"""


def one_run(folder: Path) -> tuple[float, float]:
    """Wall and user seconds of one ``corpus --help`` with the package of ``folder``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", HELP_FROM, str(folder)], check=True, capture_output=True, timeout=120)
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    folders = [folder.resolve() for folder in args.folders]
    times: dict[Path, list[tuple[float, float]]] = {folder: [] for folder in folders}
    for _ in range(args.runs):
        for folder in folders:
            times[folder].append(one_run(folder))
    for folder, runs in times.items():
        wall, user = statistics.median(w for w, _ in runs), statistics.median(u for _, u in runs)
        print(f"{folder}: median {wall:.2f} s wall, {user:.2f} s user over {len(runs)} runs")
    if len(folders) == 2:
        first, second = (statistics.median(w for w, _ in times[f]) for f in folders)
        print(f"ratio (first / second, wall): {first / second:.2f}x")


if __name__ == "__main__":
    main()
