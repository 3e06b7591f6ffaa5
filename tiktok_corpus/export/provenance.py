"""What made an export, for its manifest: the code's git commit when the package runs from a checkout,
and the versions of the libraries its numbers depend on (the split hash is pandas', the files pyarrow's)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

PACKAGE_DIR = Path(__file__).resolve().parents[1]
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def library_versions() -> dict[str, str]:
    return {"pandas": pd.__version__, "pyarrow": pa.__version__, "numpy": np.__version__}


def git_commit(package_dir: Path = PACKAGE_DIR) -> str | None:
    """The commit checked out where the package's source lives (``<checkout>/tiktok_corpus``), read from
    ``.git`` without running git (it may not be installed); None for an installed package, or a
    checkout it cannot read - it never fails an export."""
    git = package_dir.parent / ".git"
    try:
        if git.is_file():  # a worktree or a submodule: "gitdir: <its git directory>"
            git = git.parent / git.read_text().removeprefix("gitdir:").strip()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):  # a detached HEAD holds the commit itself
            return _commit(head)
        ref = head.removeprefix("ref:").strip()
        common = git / (git / "commondir").read_text().strip() if (git / "commondir").is_file() else git
        for base in (git, common):
            if (base / ref).is_file():
                return _commit((base / ref).read_text().strip())
        for line in (common / "packed-refs").read_text().splitlines():  # "<commit> <ref>" lines
            commit, _, name = line.partition(" ")
            if name == ref:
                return _commit(commit)
    except (OSError, ValueError):  # no checkout, an unreadable or odd one
        return None
    return None


def _commit(text: str) -> str | None:
    return text if _COMMIT.match(text) else None
