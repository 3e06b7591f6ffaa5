"""Who holds a claim or a scratch file: a worker name ``host:pid[:suffix]``, and whether its process on
this host is gone (killed with kill -9, out of memory), so what it held can be taken back."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable


def dead_local_workers(names: Iterable[str]) -> list[str]:
    """The worker names of this host (``host:pid[:suffix]``) whose process no longer exists. The host is
    compared whole: a LIKE on it (its ``_`` any character, SQLite's case ignored) also returned another
    machine's workers, and their live claims were taken back."""
    return [
        name for name in names if (pid := _local_pid(name)) is not None and pid != os.getpid() and not _pid_alive(pid)
    ]


def _local_pid(name: str) -> int | None:
    host, _, rest = name.partition(":")
    text = rest.split(":")[0]
    return int(text) if host == socket.gethostname() and text.isascii() and text.isdigit() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
