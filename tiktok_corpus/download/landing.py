"""Landing checked files: renamed into place and recorded in one transaction, several files per commit.

Files checked while a landing commits wait and land together (group commit): a busy run pays one commit
and one fsync per directory for several files. Each file is still renamed and its directory fsynced
before the commit that marks its row, and renamed back to its ``.part`` if that commit fails. A file
whose row the run no longer claims is not put in place (:class:`.jobs.ClaimLost`). Each file is counted
(``landed``) on the database thread once its commit is done, so a run cancelled while a commit it started
goes on still counts the files that commit lands.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._files import fsync_path
from ..store.db import Store
from ..store.downloads import LandedFile, land_downloads
from ..store.thread import DatabaseThread
from .jobs import ClaimLost, DownloadJob, FetchedFile


@dataclass
class _WaitingFile:
    """A checked file on its way into the database; ``error`` says why it could not land."""

    job: DownloadJob
    fetched: FetchedFile
    error: Exception | None = None


class GroupCommit:
    """Lands checked files on the run's database thread, every file waiting at that moment together."""

    def __init__(
        self, store: Store, data_dir: Path, db: DatabaseThread, worker: str, landed: Callable[[FetchedFile], None]
    ) -> None:
        self.store, self.data_dir, self._db, self.worker = store, data_dir, db, worker
        self._landed = landed
        self._waiting: deque[_WaitingFile] = deque()

    async def land(self, job: DownloadJob, fetched: FetchedFile) -> None:
        """Put the file in place and mark its row downloaded; raises why when it cannot land."""
        waiting = _WaitingFile(job, fetched)
        self._waiting.append(waiting)
        await self._db(self._commit_waiting)
        if waiting.error is not None:
            raise waiting.error

    def _commit_waiting(self) -> None:
        """Land every file waiting now in one transaction; if that fails, each on its own."""
        batch = []
        while self._waiting:
            batch.append(self._waiting.popleft())
        if not batch:
            return
        try:
            self._commit_files(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            for waiting in batch:  # find the one that cannot land; the others still do
                try:
                    self._commit_files([waiting])
                except Exception as single:
                    waiting.error = single

    def _commit_files(self, batch: list[_WaitingFile]) -> None:
        """Rename the checked files into place and record them, all in one transaction."""
        moved: list[_WaitingFile] = []
        rows = [
            LandedFile(
                waiting.job,
                waiting.job.final.relative_to(self.data_dir).as_posix(),
                waiting.fetched.size,
                waiting.fetched.sha256,
                waiting.fetched.url_kind,
            )
            for waiting in batch
        ]
        try:
            with land_downloads(self.store, rows, worker=self.worker) as held:
                for waiting in batch:
                    if waiting.job.video_id not in held:
                        waiting.error = ClaimLost("its claim lapsed and another worker took it; the file was not kept")
                        continue
                    os.replace(waiting.fetched.part, waiting.job.final)
                    moved.append(waiting)
                for directory in {waiting.job.final.parent for waiting in moved}:
                    fsync_path(directory)
        except BaseException:
            for waiting in moved:  # the rows did not land: the files go back to being parts
                os.replace(waiting.job.final, waiting.fetched.part)
            raise
        for waiting in moved:
            self._landed(waiting.fetched)
