"""Small file helpers shared by the stages (hashing, fsync, write-then-sync, reading a JSON record)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .errors import ConfigError


def sha256_file(path: Path) -> tuple[int, str]:
    """``(size in bytes, sha256 hex digest)`` of a file, read in chunks."""
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return handle.tell(), digest.hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path (a directory's fsync makes a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_durably(path: Path, text: str) -> None:
    """Write a text file and fsync it before returning."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def read_json_object(path: Path) -> dict:
    """A JSON object file the product wrote (a manifest, metrics.json); a clear error when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is corrupt: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is corrupt: a JSON {type(data).__name__}, not an object")
    return data
