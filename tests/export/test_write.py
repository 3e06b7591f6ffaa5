"""Writing a version: what the manifest records to redo it, two exports of one name at once, a killed
export's staging directory, and the shards written a shard at a time."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from rich.progress import Progress
from sqlalchemy import select

import tiktok_corpus.export.write as write
from tiktok_corpus._files import _free_lock, remove_abandoned_scratch, scratch_path, writer_lock
from tiktok_corpus.config import Settings
from tiktok_corpus.export import ExportError, ExportOptions, run_export
from tiktok_corpus.export.provenance import git_commit
from tiktok_corpus.export.shards import write_shards
from tiktok_corpus.store.db import open_store, upgrade
from tiktok_corpus.store.models import Export

from .conftest import T0, populate_corpus

REPO = Path(__file__).resolve().parents[2]


def test_the_manifest_records_the_data_cutoff_the_commit_and_the_library_versions(settings, store, corpus):
    manifest = json.loads((run_export(settings, ExportOptions()) / "manifest.json").read_text())

    assert manifest["selection"]["data_cutoff"] == T0.isoformat()  # the newest snapshot read
    assert manifest["library_versions"] == {
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
    }
    if shutil.which("git") and (REPO / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        assert manifest["git_commit"] == head.stdout.strip()
    as_of = T0.replace(hour=6)
    manifest = json.loads((run_export(settings, ExportOptions(as_of=as_of)) / "manifest.json").read_text())
    assert manifest["selection"]["data_cutoff"] == as_of.isoformat()


def test_the_commit_is_read_from_any_checkout_layout_and_never_fails(tmp_path):
    commit, other = "a" * 40, "b" * 40
    package = tmp_path / "repo" / "tiktok_corpus"
    package.mkdir(parents=True)
    assert git_commit(package) is None  # an installed package: no checkout around it
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    assert git_commit(package) is None  # a branch without a commit yet
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{other} refs/heads/dev\n{commit} refs/heads/main\n")
    assert git_commit(package) == commit
    (git / "refs" / "heads" / "main").write_text(f"{other}\n")  # a loose ref wins over the packed one
    assert git_commit(package) == other
    (git / "HEAD").write_text(f"{commit}\n")  # detached
    assert git_commit(package) == commit
    (git / "HEAD").write_text("not a commit\n")
    assert git_commit(package) is None
    # a worktree: .git is a file naming its git directory, whose refs live in the common one
    worktree = tmp_path / "wt" / "tiktok_corpus"
    worktree.mkdir(parents=True)
    own = git / "worktrees" / "wt"
    own.mkdir(parents=True)
    (own / "HEAD").write_text("ref: refs/heads/main\n")
    (own / "commondir").write_text("../..\n")
    (worktree.parent / ".git").write_text(f"gitdir: {own}\n")
    assert git_commit(worktree) == other
    (own / "HEAD").write_bytes(b"\xff\xfe")
    assert git_commit(worktree) is None


@pytest.fixture
def db_settings(any_db_url, tmp_path) -> Settings:
    settings = Settings(data_dir=tmp_path / "race-data", db_url=any_db_url)
    with open_store(settings, check_schema=False) as store:
        upgrade(store.engine)
        populate_corpus(store, settings.data_dir)
    return settings


def _another_export_takes(settings: Settings, version: int) -> None:
    """What a concurrent export of the same name does between our choice of a version and our insert."""
    with open_store(settings) as store, store.transaction() as session:
        session.add(Export(name="corpus", version=version, path="elsewhere", row_count=1, sha256="0" * 64))


def test_an_export_that_loses_its_version_to_another_takes_the_next(db_settings, monkeypatch):
    chosen = write.next_version
    raced: list[int] = []

    def raced_once(store, exports_dir, name):
        version = chosen(store, exports_dir, name)
        if not raced:
            raced.append(version)
            _another_export_takes(db_settings, version)
        return version

    monkeypatch.setattr(write, "next_version", raced_once)
    path = run_export(db_settings, ExportOptions())

    assert raced == [1] and path.name == "corpus-v2"
    manifest = json.loads((path / "manifest.json").read_text())
    card = (path / "README.md").read_text()
    assert manifest["version"] == 2 and "pretty_name: corpus v2\n" in card and "\n# corpus v2" in card
    with open_store(db_settings) as store, store.sessions() as session:
        assert session.scalars(select(Export.path).where(Export.version == 2)).one() == str(path.resolve())
    assert not list((db_settings.data_dir / "exports").glob(".*"))  # no staging left

    def dir_appears(store, exports_dir, name):  # v3's directory appears meanwhile (no row: not one of ours)
        version = chosen(store, exports_dir, name)
        if version == 3:
            (exports_dir / "corpus-v3").mkdir()
            (exports_dir / "corpus-v3" / "manifest.json").write_text("{}")
        return version

    monkeypatch.setattr(write, "next_version", dir_appears)
    assert run_export(db_settings, ExportOptions()).name == "corpus-v4"


def test_an_export_that_never_finds_a_free_version_gives_one_line(db_settings, monkeypatch):
    chosen = write.next_version

    def always_raced(store, exports_dir, name):
        version = chosen(store, exports_dir, name)
        _another_export_takes(db_settings, version)
        return version

    monkeypatch.setattr(write, "next_version", always_raced)
    with pytest.raises(ExportError, match="other exports of this name took 10 versions in a row"):
        run_export(db_settings, ExportOptions())
    assert not list((db_settings.data_dir / "exports").iterdir())


KILLED_EXPORT = """
import os, signal, sys
from pathlib import Path
import webdataset as wds
from tiktok_corpus._files import scratch_path, writer_lock
from tiktok_corpus.config import Settings
from tiktok_corpus.export import ExportOptions, run_export

written = wds.TarWriter.write
def write_then_die(self, sample):  # killed mid-export, as by the OOM killer: no cleanup runs
    if sample["__key__"] == "1005":
        os.kill(os.getpid(), signal.SIGKILL)
    return written(self, sample)
wds.TarWriter.write = write_then_die
run_export(Settings(data_dir=Path(sys.argv[1])), ExportOptions(format="webdataset", copy_media=True, shard_size=2))
"""


def test_a_killed_exports_staging_directory_is_removed_by_the_next(settings, store, corpus, tmp_path):
    exports = settings.data_dir / "exports"
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_EXPORT), str(settings.data_dir)], cwd=REPO)
    assert killed.returncode == -signal.SIGKILL
    left = sorted(exports.iterdir())
    assert [path.name.startswith(".corpus.partial_") for path in left] == [True, True]
    assert (left[0] / "media").is_dir() and left[1].name == f"{left[0].name}.lock"
    # Another host's killed export (a container of `docker compose run --rm`): its lock free, it goes too.
    killed_elsewhere = exports / ".corpus.partial_otherhost_2_0123abcd.part"
    (killed_elsewhere / "media").mkdir(parents=True)
    (exports / f"{killed_elsewhere.name}.lock").touch()
    # Staging directories that must stay: a running export's (this process), another host's running export
    # (its lock held), another host's of a version that took no lock, an unnamed one.
    running = scratch_path(exports / ".corpus.partial")
    running_elsewhere = exports / ".corpus.partial_otherhost_3_0123abcd.part"
    unlocked_elsewhere = exports / ".corpus.partial_otherhost_1_0123abcd.part"
    unnamed = exports / ".corpus-v7.partial-0123abcd"
    for directory in (running, running_elsewhere, unlocked_elsewhere, unnamed):
        directory.mkdir()

    with writer_lock(running_elsewhere):
        path = run_export(settings, ExportOptions())
        assert sorted(p.name for p in exports.iterdir()) == sorted(
            ["corpus-v1", running.name, running_elsewhere.name, f"{running_elsewhere.name}.lock"]
            + [unlocked_elsewhere.name, unnamed.name]
        )

    assert path.name == "corpus-v1"


def test_a_writer_whose_new_lock_a_cleaner_took_first_takes_a_lock_of_its_own(tmp_path, monkeypatch):
    """Between making its lock file and locking it, a cleaner found the lock free and no folder yet, and
    removed the file: the writer then held the lock of a file without a name, and its folder, should it be
    killed, was never removed on another host."""
    scratch = scratch_path(tmp_path / ".corpus.partial")
    flock, raced = fcntl.flock, []

    def cleaner_first(fd, operation):
        if operation == fcntl.LOCK_EX and not raced:  # the writer's own, blocking, lock
            raced.append(remove_abandoned_scratch(tmp_path))
        return flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", cleaner_first)
    with writer_lock(scratch):
        monkeypatch.setattr(fcntl, "flock", flock)
        lock = tmp_path / f"{scratch.name}.lock"
        assert raced == [0] and lock.is_file() and _free_lock(lock) is None  # there, and held
    assert not list(tmp_path.iterdir())


def test_a_folder_the_cleaner_could_not_remove_keeps_its_lock_file(tmp_path, monkeypatch):
    """Files another user owns stay in the folder: removing its lock file too left it for ever, unlocked."""
    scratch = tmp_path / ".corpus.partial_otherhost_2_0123abcd.part"
    scratch.mkdir()
    (tmp_path / f"{scratch.name}.lock").touch()
    monkeypatch.setattr(shutil, "rmtree", lambda path, ignore_errors=False: None)
    assert remove_abandoned_scratch(tmp_path) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == [scratch.name, f"{scratch.name}.lock"]


KILLED_AFTER_MOVE = """
import os, signal, sys
from pathlib import Path
import tiktok_corpus.export.write as write
from tiktok_corpus._files import scratch_path, writer_lock
from tiktok_corpus.config import Settings
from tiktok_corpus.export import ExportOptions, run_export

moved = write._move_into_place
def move_then_die(staging, final_dir):  # the directory is in place, its row not yet committed
    moved(staging, final_dir)
    os.kill(os.getpid(), signal.SIGKILL)
write._move_into_place = move_then_die
run_export(Settings(data_dir=Path(sys.argv[1])), ExportOptions())
"""


def test_a_version_whose_export_died_before_recording_it_is_recorded_by_the_next(settings, store, corpus, monkeypatch):
    """The killed export named the data dir as typed, relative: the next, run from the same folder with
    the data dir absolute, still knows the version for its database's (the manifest keeps the URL typed)."""
    exports = settings.data_dir / "exports"
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_AFTER_MOVE), settings.data_dir.name],
        cwd=settings.data_dir.parent,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
    )
    assert killed.returncode == -signal.SIGKILL
    landed = json.loads((exports / "corpus-v1" / "manifest.json").read_text())
    assert landed["source_database"] == f"sqlite:///{settings.data_dir.name}/corpus.db" != store.safe_url
    # An export of another database sharing this data dir is not this database's to record.
    foreign = exports / "corpus-v9"
    shutil.copytree(exports / "corpus-v1", foreign)
    (foreign / "manifest.json").write_text(
        json.dumps({**landed, "version": 9, "source_database": "postgresql+psycopg://elsewhere/db"})
    )

    monkeypatch.chdir(settings.data_dir.parent)
    path = run_export(settings, ExportOptions())

    assert path.name == "corpus-v10"
    with store.sessions() as session:
        rows = {row.version: row for row in session.scalars(select(Export))}
    assert sorted(rows) == [1, 10]
    recovered = rows[1]
    assert (recovered.path, recovered.row_count, recovered.sha256) == (
        str((exports / "corpus-v1").resolve()),
        landed["row_count"],
        landed["data_sha256"],
    )
    assert recovered.params == landed["options"]


def test_a_damaged_unrecorded_version_is_left_alone_and_does_not_stop_the_export(settings, store, corpus):
    damaged = settings.data_dir / "exports" / "corpus-v1"
    damaged.mkdir(parents=True)
    (damaged / "manifest.json").write_text('{"name": "corpus", "vers')

    path = run_export(settings, ExportOptions())

    assert path.name == "corpus-v2"
    assert (damaged / "manifest.json").read_text() == '{"name": "corpus", "vers'
    with store.sessions() as session:
        assert session.scalars(select(Export.version)).all() == [2]


def test_shards_hold_one_shards_rows_in_python_at_a_time(tmp_path):
    """A million rows as Python dicts took gigabytes: the rows become Python objects a shard at a time."""
    rows = 3_000
    (tmp_path / "v.mp4").write_bytes(b"mp4")
    table = pa.table(
        {
            "video_id": [str(10**6 + i) for i in range(rows)],
            "desc": ["x" * 2_000] * rows,  # ~7 MB as Python objects for the whole table, ~0.2 MB a shard
            "file": ["v.mp4"] * rows,
            "sha256": [hashlib.sha256(b"mp4").hexdigest()] * rows,
            "split": ["train"] * rows,
            "is_viral": [i % 2 for i in range(rows)],
        }
    )

    tracemalloc.start()
    try:
        entry = write_shards(tmp_path, table, tmp_path, shard_size=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert len(entry["shards"]) == 30 and sum(shard["videos"] for shard in entry["shards"]) == rows
    assert peak < 2_000_000, f"peak {peak / 1e6:.1f} MB of Python objects"


def test_an_interrupted_copy_stops_without_making_the_copies_still_queued(settings, store, corpus, monkeypatch):
    """--copy-media queues every file for its threads: a Ctrl-C (or a full disk) stops the export at once,
    not once every queued file is copied. The one worker is held in its second copy until the pool shuts
    down, so what is still queued when the interrupt lands is known: the rest."""
    held = threading.Event()
    started: list[Path] = []
    copy = write._copy_hashed

    def copy_held_after_the_first(source: Path, target: Path) -> str:
        started.append(source)
        if len(started) > 1:
            held.wait()
        return copy(source, target)

    class HeldPool(ThreadPoolExecutor):
        def shutdown(self, wait=True, *, cancel_futures=False):
            super().shutdown(wait=False, cancel_futures=cancel_futures)  # the queue as the export leaves it
            held.set()
            super().shutdown(wait=wait)

    class Interrupted(Progress):
        def advance(self, task_id, advance=1):
            raise KeyboardInterrupt

    monkeypatch.setattr(write, "COPY_THREADS", 1)
    monkeypatch.setattr(write, "ThreadPoolExecutor", HeldPool)
    monkeypatch.setattr(write, "_copy_hashed", copy_held_after_the_first)

    with pytest.raises(KeyboardInterrupt):
        run_export(settings, ExportOptions(copy_media=True), progress=Interrupted(disable=True))

    assert len(started) <= 2 < len(corpus)  # the first, and the second if the worker had taken it
    assert list((settings.data_dir / "exports").iterdir()) == []
