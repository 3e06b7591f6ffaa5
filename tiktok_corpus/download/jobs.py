"""What one claimed video carries through the stage, and where its file is written."""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .._files import VIDEOS_DIR
from ..errors import CorpusError, DownloadError, disk_full, not_permitted
from ..store.downloads import AttemptRecord
from ..tiktok.contract import MediaUrl, media_urls_json, validate_video_id

PART_SUFFIX = ".part"


def video_file_path(data_dir: Path | str, video_id: str) -> Path:
    """``{data_dir}/videos/{id[:2]}/{id}.mp4``; the id is checked to be digits before it forms a path."""
    video_id = validate_video_id(video_id)
    return Path(data_dir) / VIDEOS_DIR / video_id[:2] / f"{video_id}.mp4"


# The kind of a try, or a file, that got no answer at all (a connection refused or reset, no such host).
NO_ANSWER = "transport"
# The kind of one that got only 429 Too Many Requests, every try: the site throttles this address.
THROTTLED = "http_429"


class CannotWrite(DownloadError):
    """The data folder takes no file (read-only, not this user's, full): every row would fail alike, so
    the run stops and gives the row back untouched."""

    kind = "not_permitted"


class NoSpace(CannotWrite):
    """The data disk is (nearly) full."""

    kind = "no_space"


class ClaimLost(DownloadError):
    """The row's claim lapsed and another worker took it: this job settles nothing."""

    kind = "claim_lost"


@dataclass
class FetchAttempt(AttemptRecord):
    """One try of one URL (or of yt-dlp), timed from its creation."""

    started_s: float = field(default_factory=time.monotonic)

    def record_outcome(self, received: int, outcome: str, message: str | None) -> None:
        """How the try ended: bytes received, ``ok`` or the error kind, and why."""
        self.duration_s = round(time.monotonic() - self.started_s, 4)
        self.bytes = received
        self.outcome = outcome
        self.message = message[:2000] if message else None

    def record_error(self, received: int, exc: Exception) -> None:
        """A try that raised: its kind, or ``internal_error`` for an unexpected exception."""
        if isinstance(exc, CorpusError):
            self.record_outcome(received, exc.kind, exc.message)
        else:
            self.record_outcome(received, "internal_error", f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class RecordedFile:
    """The ``media_files`` row of an earlier download."""

    path: str
    size_bytes: int | None
    sha256: str | None


@dataclass
class DownloadJob:
    """A claimed video: its candidate URLs (replaced when refreshed), its target path and its tries.

    Its scratch files carry a token of their own (``{id}.mp4.{token}.part``): a job whose claim lapsed
    never writes or deletes the files of the worker that took the row next.
    """

    video_id: str
    candidates: list[MediaUrl]
    unique_id: str | None
    final: Path
    recorded: RecordedFile | None = None
    attempts: list[FetchAttempt] = field(default_factory=list)
    refreshed: bool = False
    token: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def part(self) -> Path:
        return self.final.with_name(f"{self.final.name}.{self.token}{PART_SUFFIX}")

    @property
    def cookie_part(self) -> Path:
        """Where yt-dlp reads the session's cookies from (owner-only, removed after its run)."""
        return self.final.with_name(f"{self.video_id}.{self.token}.cookies{PART_SUFFIX}")

    @property
    def refreshed_urls(self) -> list[dict] | None:
        """The candidates to store on the row when they were fetched anew, else None."""
        return media_urls_json(self.candidates) if self.refreshed else None


@dataclass(frozen=True)
class UnloadableRow:
    """A claimed row that cannot become a job (its id is not digits)."""

    video_id: str
    error: CorpusError


@dataclass
class FetchedFile:
    """A ``.part`` file that passed every acceptance check."""

    part: Path
    size: int
    sha256: str
    url_kind: str | None
    method: str


class PartDirectories:
    """Makes the directories ``.part`` files are written to, and refuses to fill the disk."""

    def __init__(self, min_free_bytes: int, max_file_bytes: int) -> None:
        self._min_free_bytes = min_free_bytes
        self._max_file_bytes = max_file_bytes
        self._made: set[Path] = set()
        self._writing = 0  # expected bytes of the files being written now: the disk must hold them all

    @contextmanager
    def writing(self, directory: Path, expected: int) -> Iterator[None]:
        """Create ``directory`` (once per run, not a syscall per file) and hold ``expected`` bytes while
        the block writes a file there. NoSpace unless it fits beside the reserve and the files already
        being written (counted whole, though what they wrote has left the free space already: on the safe
        side), or when a write finds the disk full (ENOSPC). No file is held at more than the largest one
        accepted: a size the site declares (``DataSize``) may be anything, and 10^15 bytes stopped every
        run as "disk full"."""
        expected = min(expected, self._max_file_bytes)
        with _stopping_where_no_file_can_be_written():
            if directory not in self._made:
                directory.mkdir(parents=True, exist_ok=True)
                self._made.add(directory)
            free = shutil.disk_usage(directory).free
        if free < expected + self._writing + self._min_free_bytes:
            raise NoSpace(
                f"only {free / 1e6:,.0f} MB free in {directory}; need {expected / 1e6:,.0f} MB "
                f"plus {self._writing / 1e6:,.0f} MB being written plus {self._min_free_bytes / 1e6:,.0f} MB reserve"
            )
        self._writing += expected
        try:
            with _stopping_where_no_file_can_be_written():
                yield
        finally:
            self._writing -= expected


@contextmanager
def _stopping_where_no_file_can_be_written() -> Iterator[None]:
    """A full disk (ENOSPC) or a refused folder (read-only, no permission) as :class:`CannotWrite`, also
    when an error was raised from one (yt-dlp's)."""
    try:
        yield
    except Exception as exc:
        if (full := disk_full(exc)) is not None:
            raise NoSpace(full.message) from exc
        if (refused := not_permitted(exc)) is not None:
            raise CannotWrite(refused.message) from exc
        raise
