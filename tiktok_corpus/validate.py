"""The validation stage: turn downloaded files into trusted training inputs.

One run has three passes, each safe to interrupt and repeat:

1. **Requeue** - finished rows whose file may no longer match their probe go back to ``pending``:
   the download's ``sha256`` differs from ``probed_sha256`` (a re-download), the file on disk changed
   since it was probed (size differs or modified after ``probed_at``), a missing file appeared or a
   present one vanished, a previous run's internal ``error``, or ``deep`` is asked for and a video
   stream was never decoded (``frame_count_method != "decode"``). Everything else keeps its probe.
2. **Probe** - ``pending`` rows are claimed from the queue a few at a time, hashed and probed by a
   bounded thread pool, and each result lands in one transaction with its outcome. The probe runs
   in-process (PyAV): about 95% of it is inside libav's open and stream-info calls, which release
   the GIL as hashlib does, so N threads use N cores; only ffprobe fallbacks and ``--deep``'s ffmpeg
   are processes.
3. **Reclassify** - every row probed from its current bytes gets its outcome again from the stored
   probe columns under this run's thresholds, so changing ``min_frames`` never probes again.

Outcomes: ``valid | too_short | no_video | tiny_frames | zero_duration`` (measured, re-classifiable),
``corrupt`` (unreadable; ``probe_error_kind`` says why: empty, truncated, unreadable, timeout,
decode_error) and ``missing_file``. Nothing is ever deleted. An unexpected exception on one file
marks it ``error`` (never a success) and the next run retries it.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from stat import S_ISREG

from rich.progress import Progress
from sqlalchemy import func, select, update

from ._files import sha256_file
from .config import PAPER_MIN_FRAMES, Settings, described
from .errors import ConfigError, MediaError
from .media import DEEP_TIMEOUT_S, PROBE_TIMEOUT_S, ProbeResult, deep_check, probe
from .store.db import Store, open_store
from .store.models import MediaFile, Video, utcnow
from .store.queue import claim, count_claimable, finish, release

MEASURED_OUTCOMES = ("valid", "too_short", "no_video", "tiny_frames", "zero_duration")
OUTCOMES = (*MEASURED_OUTCOMES, "corrupt", "missing_file")
INTERNAL_ERROR = "error"
PROBE_FIELDS = tuple(ProbeResult.__dataclass_fields__)
UPDATE_CHUNK = 500  # ids per UPDATE ... IN (...), well under SQLite's variable limit


@dataclass(frozen=True)
class Rules:
    """The thresholds that turn a probe into an outcome (the paper excludes < 100 frames)."""

    min_frames: int = described(PAPER_MIN_FRAMES, "Fewer frames than this: excluded (too_short).")
    min_side: int = described(2, "Narrower or lower frames than this: tiny_frames (a placeholder, not a video).")


@dataclass
class ValidateSummary:
    """Downloaded videos by outcome after the run, and what this run did."""

    counts: dict[str, int] = field(default_factory=dict)
    probed: int = 0
    requeued: int = 0
    reclassified: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # this run's probe error kinds

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Job:
    video_id: str
    path: Path | None  # None: the row has no media file


@dataclass(frozen=True)
class _Inspection:
    """One file's findings; ``outcome`` is set where no classification is needed."""

    video_id: str
    sha256: str | None = None
    size_bytes: int | None = None
    probe: ProbeResult | None = None
    outcome: str | None = None
    error_kind: str | None = None
    error: str | None = None


def classify(media, rules: Rules) -> tuple[str, str | None]:
    """Outcome and reason from probe fields (a ProbeResult or a probed MediaFile row)."""
    if media.video_codec is None:
        return "no_video", "no video stream"
    if (media.width or 0) < rules.min_side or (media.height or 0) < rules.min_side:
        return "tiny_frames", f"{media.width}x{media.height} frames"
    if not media.duration_s or media.duration_s <= 0:
        return "zero_duration", f"duration {media.duration_s}"
    if (media.frame_count or 0) < rules.min_frames:
        return "too_short", f"{media.frame_count} frames < {rules.min_frames}"
    return "valid", None


def run_validate(settings: Settings, *, min_frames: int = Rules.min_frames, deep: bool = False,
                 workers: int | None = None, progress: Progress | None = None,
                 min_side: int = Rules.min_side) -> ValidateSummary:
    """Probe new or changed downloaded files, reclassify the rest; returns counts by outcome."""
    if min_frames < 1 or min_side < 1:
        raise ConfigError(f"--min-frames and --min-side must be at least 1 (got {min_frames}, {min_side})")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1 (got {workers})")
    for tool in ("ffprobe", "ffmpeg") if deep else ("ffprobe",):
        if shutil.which(tool) is None:
            raise ConfigError(f"{tool} is not installed (apt-get install ffmpeg)")
    rules = Rules(min_frames=min_frames, min_side=min_side)
    summary = ValidateSummary()
    with open_store(settings) as store:
        summary.requeued = _requeue_changed(store, settings.data_dir, deep)
        _probe_pending(store, settings.data_dir, rules, deep, workers or os.cpu_count() or 1,
                       progress, summary)
        summary.reclassified = _reclassify(store, rules)
        summary.counts = _outcome_counts(store)
    return summary


# --- pass 1: requeue ----------------------------------------------------------------------------

def _requeue_changed(store: Store, data_dir: Path, deep: bool) -> int:
    query = (select(Video.id, Video.probe_status, MediaFile)
             .outerjoin(MediaFile, MediaFile.video_id == Video.id)
             .where(Video.download_status == "downloaded",
                    Video.probe_status.in_([*OUTCOMES, INTERNAL_ERROR])))
    with store.sessions() as session:
        stale = [video_id for video_id, status, media in session.execute(query)
                 if _needs_probe(status, media, data_dir, deep)]
    with store.transaction() as session:
        for start in range(0, len(stale), UPDATE_CHUNK):
            session.execute(update(Video).where(Video.id.in_(stale[start:start + UPDATE_CHUNK]))
                            .values(probe_status="pending", probe_updated_at=utcnow())
                            .execution_options(synchronize_session=False))
    return len(stale)


def _needs_probe(status: str, media: MediaFile | None, data_dir: Path, deep: bool) -> bool:
    if status == INTERNAL_ERROR:
        return True
    stat = _stat(data_dir / media.path) if media is not None else None
    if stat is None or status == "missing_file":
        return (stat is None) != (status == "missing_file")
    if media.probed_sha256 != media.sha256 or media.probed_at is None or stat.st_size != media.size_bytes:
        return True
    if stat.st_mtime > _as_utc(media.probed_at).timestamp():
        return True
    return deep and media.video_codec is not None and media.frame_count_method != "decode"


def _stat(path: Path) -> os.stat_result | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found if S_ISREG(found.st_mode) else None


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# --- pass 2: probe ------------------------------------------------------------------------------

def _probe_pending(store: Store, data_dir: Path, rules: Rules, deep: bool, workers: int,
                   progress: Progress | None, summary: ValidateSummary) -> None:
    """Keep at most 2 x workers files claimed and in flight; record each as soon as it is done."""
    lease_s = 2 * (DEEP_TIMEOUT_S + PROBE_TIMEOUT_S if deep else PROBE_TIMEOUT_S) + 60
    in_flight: dict[Future, str] = {}
    exhausted = False
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="validate") as pool:
        task = progress.add_task("validate", total=count_claimable(
            store, "probe", where=[Video.download_status == "downloaded"])) if progress is not None else None
        try:
            while True:
                room = 2 * workers - len(in_flight)
                if not exhausted and room >= workers:
                    ids = claim(store, "probe", room, where=[Video.download_status == "downloaded"],
                                lease_s=lease_s)
                    exhausted = not ids
                    for job in _jobs(store, data_dir, ids):
                        in_flight[pool.submit(_inspect, job, deep)] = job.video_id
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    in_flight.pop(future)
                    inspection = future.result()
                    _record(store, inspection, rules, summary)
                    if progress is not None:
                        progress.advance(task)
        except BaseException:
            for future in in_flight:
                future.cancel()
            release(store, "probe", in_flight.values())
            raise


def _jobs(store: Store, data_dir: Path, ids: list[str]) -> list[_Job]:
    if not ids:
        return []
    with store.sessions() as session:
        paths = dict(session.execute(select(MediaFile.video_id, MediaFile.path)
                                     .where(MediaFile.video_id.in_(ids))).all())
    return [_Job(video_id, data_dir / paths[video_id] if video_id in paths else None)
            for video_id in ids]


def _inspect(job: _Job, deep: bool) -> _Inspection:
    """Hash and probe one file; never raises, so one bad file cannot stop the batch."""
    try:
        if job.path is None or _stat(job.path) is None:
            where = job.path or "no media_files row"
            return _Inspection(job.video_id, outcome="missing_file", error_kind="missing_file",
                               error=f"file not found: {where}")
        size, sha256 = sha256_file(job.path)
        try:
            result = probe(job.path)
            if deep and result.video_codec is not None:
                result = replace(result, frame_count=deep_check(job.path), frame_count_method="decode")
        except MediaError as exc:
            return _Inspection(job.video_id, sha256, size, outcome="corrupt", error_kind=exc.kind,
                               error=exc.message)
        return _Inspection(job.video_id, sha256, size, probe=result)
    except Exception as exc:  # a bug or an OS error: recorded as "error", retried by the next run
        return _Inspection(job.video_id, outcome=INTERNAL_ERROR, error_kind=type(exc).__name__,
                           error=str(exc) or repr(exc))


def _record(store: Store, found: _Inspection, rules: Rules, summary: ValidateSummary) -> None:
    """The probe columns and the outcome land in one transaction."""
    outcome, error_kind, error = found.outcome, found.error_kind, found.error
    if outcome is None:
        outcome, error = classify(found.probe, rules)
        error_kind = None if outcome == "valid" else outcome
    with store.transaction() as session:
        media = session.get(MediaFile, found.video_id)
        if media is not None and found.sha256 is not None:
            # The row describes the bytes on disk: a changed file re-keys it.
            media.sha256, media.size_bytes = found.sha256, found.size_bytes
            media.probed_sha256, media.probed_at = found.sha256, utcnow()
            for name in PROBE_FIELDS:
                setattr(media, name, getattr(found.probe, name) if found.probe else None)
        finish(session, "probe", found.video_id, outcome, error_kind=error_kind, error=error)
    summary.probed += 1
    if error_kind:
        summary.reasons[error_kind] = summary.reasons.get(error_kind, 0) + 1


# --- pass 3: reclassify -------------------------------------------------------------------------

def _reclassify(store: Store, rules: Rules) -> int:
    """Apply this run's thresholds to every row probed from its current bytes (no probing)."""
    changed = 0
    with store.transaction() as session:
        rows = session.execute(
            select(Video.id, Video.probe_status, MediaFile)
            .join(MediaFile, MediaFile.video_id == Video.id)
            .where(Video.download_status == "downloaded",
                   Video.probe_status.in_(MEASURED_OUTCOMES),
                   MediaFile.probed_sha256 == MediaFile.sha256)).all()
        for video_id, status, media in rows:
            outcome, reason = classify(media, rules)
            if outcome != status:
                finish(session, "probe", video_id, outcome,
                       error_kind=None if outcome == "valid" else outcome, error=reason)
                changed += 1
    return changed


def _outcome_counts(store: Store) -> dict[str, int]:
    with store.sessions() as session:
        rows = session.execute(select(Video.probe_status, func.count())
                               .where(Video.download_status == "downloaded")
                               .group_by(Video.probe_status)).all()
    return {status: count for status, count in sorted(rows)}
