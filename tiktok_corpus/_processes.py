"""Who holds a claim or a scratch file: a worker name ``host:pid[:suffix]``, and whether its process on
this host is gone (killed with kill -9, out of memory), so what it held can be taken back."""

from __future__ import annotations

import os
from collections.abc import Iterable


def dead_local_workers(names: Iterable[str]) -> list[str]:
    """The worker names (``host:pid[:suffix]``, of this host) whose process no longer exists."""
    return [name for name in names if (pid := _pid(name)) is not None and pid != os.getpid() and not _pid_alive(pid)]


def _pid(name: str) -> int | None:
    text = name.split(":")[1]
    return int(text) if text.isascii() and text.isdigit() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
