"""One file's inspection: hash it, probe it, and say what was found; no database, safe in a thread."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._files import file_stat, sha256_file
from ..errors import MediaError
from ..media import CUT_SHORT, ProbeResult, deep_check, probe
from .rules import CHANGED, INTERNAL_ERROR

PROBE_FIELDS = tuple(ProbeResult.__dataclass_fields__)


@dataclass(frozen=True)
class Job:
    video_id: str
    path: Path | None  # None: the row has no media file
    sha256: str | None  # what the download recorded of the file's bytes


@dataclass(frozen=True)
class Inspection:
    """One file's findings; ``outcome`` is set where no classification is needed."""

    video_id: str
    sha256: str | None = None  # of the bytes read
    read_from: datetime | None = None  # when reading them began: a write after it is a change to probe again
    probe: ProbeResult | None = None
    outcome: str | None = None
    error_kind: str | None = None
    error: str | None = None

    def measured(self) -> dict[str, Any] | None:
        """The file row's probe columns (the hash of the bytes read, and the probe's fields or None), or
        None where the file was never read. The download's ``sha256`` and size are never among them:
        they are the record of what the site served."""
        if self.sha256 is None:
            return None
        return {
            "probed_sha256": self.sha256,
            "probed_at": self.read_from,
            **{name: getattr(self.probe, name) if self.probe else None for name in PROBE_FIELDS},
        }


def inspect(job: Job, deep: bool) -> Inspection:
    """Hash and probe one file (unless its bytes are not the download's); never raises, so one bad file
    cannot stop the batch."""
    try:
        if job.path is None or file_stat(job.path) is None:
            where = job.path or "no media_files row"
            return Inspection(
                job.video_id, outcome="missing_file", error_kind="missing_file", error=f"file not found: {where}"
            )
        # Stamped before the bytes are read: a write landing while they are hashed or probed has a later
        # mtime, and the next run probes the file again (stamped at the end, such a write went unseen).
        read_from = datetime.now(UTC)
        sha256 = sha256_file(job.path)[1]
        if sha256 != job.sha256:
            error = f"sha256 {sha256}, not the downloaded file's {job.sha256}"
            return Inspection(job.video_id, sha256, read_from, outcome="corrupt", error_kind=CHANGED, error=error)
        try:
            result = probe(job.path)
            if deep and result.video_codec is not None:
                result = replace(result, frame_count=deep_check(job.path), frame_count_method="decode")
        except MediaError as exc:
            # A probe past its time (or stopped by Ctrl-C) says nothing of the file: probed again by the
            # next run, never ``corrupt`` (which --retry-failed downloads again, maybe from nowhere).
            outcome = INTERNAL_ERROR if exc.kind in CUT_SHORT else "corrupt"
            return Inspection(job.video_id, sha256, read_from, outcome=outcome, error_kind=exc.kind, error=exc.message)
        return Inspection(job.video_id, sha256, read_from, probe=result)
    except Exception as exc:  # a bug or an OS error: recorded as "error", retried by the next run
        return Inspection(
            job.video_id, outcome=INTERNAL_ERROR, error_kind=type(exc).__name__, error=str(exc) or repr(exc)
        )
