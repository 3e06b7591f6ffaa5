"""Small file helpers shared by the stages (hashing, fsync, write-then-sync, atomic replacement, reading a
JSON record)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG

from ._processes import dead_local_workers
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


def scratch_path(target: Path) -> Path:
    """A name beside ``target`` that only this writer uses (``NAME_HOST_PID_TOKEN.part``): two processes, or
    two threads, making the same file never write, rename or delete each other's half-written one, and
    :func:`remove_abandoned_scratch` can tell whose it was."""
    return target.with_name(f"{target.name}_{_host()}_{os.getpid()}_{secrets.token_hex(4)}.part")


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """The :func:`scratch_path` to write ``target``'s new content to; when the block ends it is fsynced and
    renamed over ``target``, and the rename made durable: readers, and a machine that lost power, see the
    old file or the whole new one, never a torn one. Raising in the block removes the scratch file.

    Two writers of the same file each land a whole one; the last rename wins, which is fine where both
    made the same content (a cache) or where one folder has one writer (a run)."""
    partial = scratch_path(Path(target))
    try:
        yield partial
        fsync_path(partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    fsync_path(partial.parent)


def write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` through :func:`replacing`: a record whose presence means "done"."""
    with replacing(path) as partial:
        partial.write_text(text, encoding="utf-8")


@contextmanager
def writer_lock(scratch: Path) -> Iterator[None]:
    """Hold ``SCRATCH.lock`` beside a :func:`scratch_path` directory for the block: take it before making the
    directory, which the block moves into place or removes. The system lets the lock go however the writer
    ends, so :func:`remove_abandoned_scratch` on any host sharing the folder (another container's, whose
    pids say nothing here) removes a killed writer's directory: an export's, a whole copy of its media."""
    lock = _lock_file(scratch)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)  # the name is this writer's alone
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a filesystem without locks: the directory is left to this host's check of its pid
            lock.unlink(missing_ok=True)
            os.close(fd)
            fd = -1
            break
        if is_file_at(lock, fd):
            break
        os.close(fd)  # a cleaner took the new file's free lock before this writer did and removed it: again
    try:
        yield
    finally:
        if fd >= 0:
            lock.unlink(missing_ok=True)  # while still held: a cleaner that opened it finds no file at the path
            os.close(fd)


def remove_abandoned_scratch(directory: Path) -> int:
    """Delete the :func:`scratch_path` files (or staging directories) in ``directory`` whose writer no
    longer runs (killed mid-write): a process of this host that no longer exists, or any host's writer whose
    :func:`writer_lock` is free. Those of live processes, and other hosts' without a lock, are left.
    Returns how many went."""
    mine = re.compile(rf"_{re.escape(_host())}_(?P<pid>\d+)_[0-9a-f]{{8}}\.part$")
    writers = {
        path: f"{socket.gethostname()}:{found['pid']}"  # a worker name of this host (the file's is cleaned)
        for path in Path(directory).glob("*.part")
        if (found := mine.search(path.name))
    }
    dead = set(dead_local_workers(set(writers.values())))
    gone = [path for path, writer in writers.items() if writer in dead]
    for path in gone:
        _remove_scratch(path)
    for lock in Path(directory).glob("*.part.lock"):
        fd = _free_lock(lock)
        if fd is None:
            continue
        try:  # under the lock: no writer can take this name again meanwhile
            scratch = lock.with_suffix("")
            if scratch.exists():
                _remove_scratch(scratch)
                gone.append(scratch)
            if not scratch.exists():  # else (a file it may not remove) the lock stays, to be tried again
                lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return len({path for path in gone if not path.exists()})


def _lock_file(scratch: Path) -> Path:
    return scratch.with_name(f"{scratch.name}.lock")


def _free_lock(lock: Path) -> int | None:
    """A descriptor holding ``lock``'s flock, or None where a writer holds it or the file went meanwhile."""
    try:
        fd = os.open(lock, os.O_RDWR)  # NFS takes an exclusive lock only on a file open for writing
    except OSError:  # gone, or not this user's to write: left
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if is_file_at(lock, fd):
            return fd
    except OSError:  # held (BlockingIOError), or no locks on this filesystem
        pass
    os.close(fd)  # or removed by its writer as it let go
    return None


def is_file_at(path: Path, fd: int) -> bool:
    """Whether ``fd`` is the file at ``path`` (not one removed from under its name)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _remove_scratch(path: Path) -> None:
    if path.is_dir():  # a staging directory (an export's)
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _host() -> str:
    """This host's name as a scratch file carries it: no ``_`` (the names' separator), nothing a file minds."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())


def media_path(path: str | os.PathLike[str]) -> str:
    """``path`` as libav, ffmpeg and ffprobe must be given it: absolute. They read a relative name with a
    colon as a URL (``2024-05-01T12:30:00.mp4`` as protocol ``2024-05-01T12``) and ffprobe one starting
    with ``-`` as an option; an absolute path begins with ``/``, which neither can be."""
    return str(Path(path).absolute())


def contained_file(root: Path, relative: str | os.PathLike[str], *, within: Path | None = None) -> Path:
    """``root / relative`` resolved (links followed), or FileNotFoundError when it is no file or lies
    outside ``within`` (``root`` unless given; an absolute path, ``..``, a link out)."""
    path = (root.resolve() / relative).resolve()
    if not path.is_relative_to((within or root).resolve()) or not path.is_file():
        raise FileNotFoundError(relative)
    return path


def file_stat(path: str | os.PathLike[str]) -> os.stat_result | None:
    """The file's stat, or None where there is no regular file."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found if S_ISREG(found.st_mode) else None


VIDEOS_DIR = "videos"  # the downloaded files' folder in the data dir: videos/{id[:2]}/{id}.mp4


def downloaded_file(data_dir: Path, relative: str | os.PathLike[str]) -> Path:
    """A media row's file (its path is relative to the data dir), resolved, or FileNotFoundError where it
    is no file in the downloads' folder: the data dir also holds the crawler's cookies and the database,
    which a row naming them (written by another host sharing the database) had served."""
    return contained_file(data_dir, relative, within=data_dir / VIDEOS_DIR)


def require_media_folder(data_dir: Path | str, recorded_files: int) -> None:
    """Refuse to work on a corpus whose downloaded files' folder is gone while the database records some:
    a disk not mounted, a data folder moved, or ``--data-dir`` naming another corpus's database. Validate
    would find every file missing and ``download --retry-failed`` fetch the whole corpus again."""
    folder = Path(data_dir) / VIDEOS_DIR
    if recorded_files and not folder.is_dir():
        raise ConfigError(
            f"{folder} does not exist, yet the database records {recorded_files} downloaded files: is the disk "
            "that holds them mounted, and is --data-dir this corpus's folder (on several machines, one shared "
            "folder: docs/operations.md)? Nothing was changed. If the files "
            f"are gone for good, make the empty folder (mkdir -p {folder}) and run again: validate then marks "
            "them missing, and download --retry-failed fetches them again."
        )


def written_since(stat: os.stat_result, moment: datetime | None) -> bool:
    """Whether a file was modified after ``moment`` (a database's time: a naive one is UTC, as SQLite gives
    back what was written in UTC), or there is no moment: without reading it, what says that a file may no
    longer hold the bytes read of it then (a probe's ``probed_at``)."""
    return moment is None or stat.st_mtime > (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def newest_written(records: Iterable[Path]) -> Path | None:
    """The record written last (by its modification time; the path breaks ties), or None. Folders are
    named by the user as often as by the clock (``--out runs/baseline``), so their names cannot say."""
    return max(records, key=lambda path: (path.stat().st_mtime_ns, str(path)), default=None)


def read_json_object(path: Path) -> dict:
    """A JSON object file the product wrote (a manifest, metrics.json); a clear error when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is corrupt: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is corrupt: a JSON {type(data).__name__}, not an object")
    return data
