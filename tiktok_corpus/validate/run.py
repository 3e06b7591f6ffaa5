"""``run_validate``: the requeue, probe and reclassify passes over the queue (described in the package)."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.progress import Progress

from .._files import file_stat, require_media_folder, written_since
from .._waits import wait_first
from ..config import Settings
from ..errors import ConfigError
from ..media import DEEP_TIMEOUT_S, PROBE_TIMEOUT_S
from ..store.db import Store, open_store
from ..store.downloads import count_media_files
from ..store.probes import (
    claim_probes,
    count_probe_claimable,
    downloaded_files,
    probe_counts,
    probed_downloads,
    reclassify_probes,
    record_probe,
    requeue_probes,
)
from ..store.queue import reclaim_dead, release
from .inspection import Inspection, Job, inspect
from .rules import CHANGED, INTERNAL_ERROR, MEASURED_OUTCOMES, OUTCOMES, Rules, measured_outcome


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


def run_validate(
    settings: Settings,
    *,
    min_frames: int = Rules.min_frames,
    deep: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
    min_side: int = Rules.min_side,
) -> ValidateSummary:
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
    with open_store(settings, create=False) as store:
        require_media_folder(settings.data_dir, count_media_files(store))
        reclaim_dead(store, "probe")  # claims of a killed run, not left to their lease
        changed = _changed_since_probe(store, settings.data_dir, deep)
        summary.requeued = len(changed)
        _probe_pending(
            store, settings.data_dir, rules, deep, workers or os.cpu_count() or 1, progress, summary, changed=changed
        )
        summary.reclassified = reclassify_probes(store, MEASURED_OUTCOMES, lambda media: measured_outcome(media, rules))
        summary.counts = probe_counts(store)
    return summary


# --- pass 1: what to probe again ----------------------------------------------------------------


def _changed_since_probe(store: Store, data_dir: Path, deep: bool) -> list[str]:
    """The finished rows whose probe may no longer describe their file (see :func:`_needs_probe`)."""
    return [row.id for row in probed_downloads(store, [*OUTCOMES, INTERNAL_ERROR]) if _needs_probe(row, data_dir, deep)]


def _needs_probe(row, data_dir: Path, deep: bool) -> bool:
    """Whether a finished row's probe may no longer describe its file (a row of ``probed_downloads``)."""
    if row.probe_status == INTERNAL_ERROR:
        return True
    missing = row.probe_status == "missing_file"
    stat = file_stat(data_dir / row.path) if row.path is not None else None
    if stat is None or missing:
        return (stat is None) != missing
    if written_since(stat, row.probed_at):
        return True
    if row.probe_error_kind == CHANGED:  # other bytes than the download's, not written since: still so
        return False
    if row.probed_sha256 != row.sha256 or stat.st_size != row.size_bytes:
        return True
    return deep and row.video_codec is not None and row.frame_count_method != "decode"


# --- pass 2: probe ------------------------------------------------------------------------------


def _probe_pending(
    store: Store,
    data_dir: Path,
    rules: Rules,
    deep: bool,
    workers: int,
    progress: Progress | None,
    summary: ValidateSummary,
    *,
    changed: list[str],
) -> None:
    """Keep at most 2 x workers files claimed and in flight; record each as soon as it is done.

    The pending rows go first; then the ``changed`` ones go back to the queue a claim's worth at a time,
    so the rest keep their outcome meanwhile: a whole corpus requeued at once (files restored with new
    mtimes, a first ``--deep``) vanished from exports until the run finished, or for good if it was killed.
    """
    lease_s = 2 * (DEEP_TIMEOUT_S + PROBE_TIMEOUT_S if deep else PROBE_TIMEOUT_S) + 60
    in_flight: dict[Future, str] = {}
    exhausted = False
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="validate") as pool:
        total = count_probe_claimable(store) + len(changed)
        task = progress.add_task("validate", total=total) if progress is not None else None
        try:
            while True:
                room = 2 * workers - len(in_flight)
                if not exhausted and room >= workers:
                    ids = claim_probes(store, room, lease_s=lease_s)
                    while not ids and changed:  # until a claim lands: another run may take a batch first
                        requeue_probes(store, changed[:room])
                        del changed[:room]
                        ids = claim_probes(store, room, lease_s=lease_s)
                    exhausted = not ids and not changed
                    for job in _jobs(store, data_dir, ids):
                        in_flight[pool.submit(inspect, job, deep)] = job.video_id
                if not in_flight:
                    break
                done, _ = wait_first(in_flight)
                for future in done:
                    in_flight.pop(future)
                    _record(store, future.result(), rules, summary)
                    if progress is not None and task is not None:
                        progress.advance(task)
        except BaseException:
            for future in in_flight:
                future.cancel()
            release(store, "probe", in_flight.values())
            raise


def _jobs(store: Store, data_dir: Path, ids: list[str]) -> list[Job]:
    files = downloaded_files(store, ids)
    return [
        Job(video_id, data_dir / file.path, file.sha256) if (file := files.get(video_id)) else Job(video_id, None, None)
        for video_id in ids
    ]


def _record(store: Store, found: Inspection, rules: Rules, summary: ValidateSummary) -> None:
    """The probe columns and the outcome land in one transaction."""
    if found.outcome is None:
        outcome = measured_outcome(found.probe, rules)
    else:
        outcome = (found.outcome, found.error_kind, found.error)
    record_probe(store, found.video_id, outcome, found.measured())
    summary.probed += 1
    error_kind = outcome[1]
    if error_kind:
        summary.reasons[error_kind] = summary.reasons.get(error_kind, 0) + 1
