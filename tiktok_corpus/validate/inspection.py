"""One file's inspection: hash it, probe it, and say what was found; no database, safe in a thread."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from stat import S_ISREG
from typing import Any

from .._files import sha256_file
from ..errors import MediaError
from ..media import ProbeResult, deep_check, probe
from .rules import INTERNAL_ERROR

PROBE_FIELDS = tuple(ProbeResult.__dataclass_fields__)


@dataclass(frozen=True)
class Job:
    video_id: str
    path: Path | None  # None: the row has no media file


@dataclass(frozen=True)
class Inspection:
    """One file's findings; ``outcome`` is set where no classification is needed."""

    video_id: str
    sha256: str | None = None
    size_bytes: int | None = None
    probe: ProbeResult | None = None
    outcome: str | None = None
    error_kind: str | None = None
    error: str | None = None

    def measured(self) -> dict[str, Any] | None:
        """The file row's new columns (these bytes, and the probe's fields or None), or None where the
        file was never read: a changed file re-keys its row."""
        if self.sha256 is None:
            return None
        return {
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            **{name: getattr(self.probe, name) if self.probe else None for name in PROBE_FIELDS},
        }


def inspect(job: Job, deep: bool) -> Inspection:
    """Hash and probe one file; never raises, so one bad file cannot stop the batch."""
    try:
        if job.path is None or file_stat(job.path) is None:
            where = job.path or "no media_files row"
            return Inspection(
                job.video_id, outcome="missing_file", error_kind="missing_file", error=f"file not found: {where}"
            )
        size, sha256 = sha256_file(job.path)
        try:
            result = probe(job.path)
            if deep and result.video_codec is not None:
                result = replace(result, frame_count=deep_check(job.path), frame_count_method="decode")
        except MediaError as exc:
            # A probe past its time says the machine was busy, not that the file is bad: probed again by
            # the next run, never ``corrupt`` (which --retry-failed downloads again, maybe from nowhere).
            outcome = INTERNAL_ERROR if exc.kind == "timeout" else "corrupt"
            return Inspection(job.video_id, sha256, size, outcome=outcome, error_kind=exc.kind, error=exc.message)
        return Inspection(job.video_id, sha256, size, probe=result)
    except Exception as exc:  # a bug or an OS error: recorded as "error", retried by the next run
        return Inspection(
            job.video_id, outcome=INTERNAL_ERROR, error_kind=type(exc).__name__, error=str(exc) or repr(exc)
        )


def file_stat(path: Path) -> os.stat_result | None:
    """The file's stat, or None where there is no regular file."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found if S_ISREG(found.st_mode) else None
