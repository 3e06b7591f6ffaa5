"""The error hierarchy, written out in one place.

Every error the library raises on purpose derives from :class:`CorpusError` and carries:

* ``kind`` - a short, stable name stored on database rows and counted in run summaries;
* ``expected`` - True for outcomes a user can meet in normal operation (a deleted video, a stale
  schema, a bad option). The CLI prints those as one line, without a traceback. An unexpected
  error is a bug and keeps its traceback.
* ``retryable`` - True where trying again later can succeed (blocks, 5xx, timeouts).

```
CorpusError
├── ConfigError            bad settings or options                      expected, final
├── StaleSchemaError       database needs `corpus db upgrade`          expected, final
├── ContractError          a TikTok answer we cannot use                 retryable unless said
│   ├── BlockedError       WAF / empty body / captcha / login wall       expected, retryable
│   └── ItemUnavailable    deleted, private (statusCode 10204/10216...)  expected, final
├── DownloadError          a body that is not the whole video           kind says which
├── MediaError             ffprobe/ffmpeg could not read a file          expected, final
├── PersistentlyBlocked    the crawl saw only blocks; stop               expected, final (exit 3)
├── SiteUnreachable        the crawl got no answer at all; stop           expected, final (exit 4)
└── DiskFull               a write found the disk full (files or database) expected, final
```
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator


class CorpusError(Exception):
    """Base of every error the library raises on purpose."""

    kind: str = "error"
    expected: bool = False
    retryable: bool = False
    exit_code: int = 1

    summary: dict | None = None  # a stopped run's summary (its counts), for a script reading --json

    def __init__(
        self,
        message: str = "",
        *,
        kind: str | None = None,
        expected: bool | None = None,
        retryable: bool | None = None,
        summary: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.summary = summary
        if kind is not None:
            self.kind = kind
        if expected is not None:
            self.expected = expected
        if retryable is not None:
            self.retryable = retryable

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.kind


class ConfigError(CorpusError):
    kind = "config"
    expected = True


class StaleSchemaError(CorpusError):
    kind = "stale_schema"
    expected = True


class ContractError(CorpusError):
    """A response that does not follow the TikTok web contract (malformed JSON, no item...)."""

    kind = "contract"
    expected = True
    retryable = True


class BlockedError(ContractError):
    """Bot detection: empty body, WAF interstitial, captcha or login wall."""

    kind = "blocked"
    retryable = True


class ItemUnavailable(ContractError):
    """TikTok says the item is gone or private: record it, never retry."""

    kind = "unavailable"
    retryable = False


class DownloadError(CorpusError):
    """A download that did not produce a whole, playable video; ``kind`` names why."""

    kind = "download"
    expected = True

    def __init__(
        self, message: str = "", *, kind: str | None = None, status: int | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message, kind=kind, retryable=retryable)
        self.status = status
        self.retry_after = 0.0  # seconds the server asked to wait (Retry-After), for the retry policy


class MediaError(CorpusError):
    """ffprobe / ffmpeg could not read a file (stderr kept in the message)."""

    kind = "corrupt"
    expected = True


class TrainingDiverged(CorpusError):
    """The loss went non-finite before any epoch improved on validation: there is no model to report."""

    kind = "diverged"
    expected = True


class PersistentlyBlocked(CorpusError):
    """The crawl saw nothing but blocks for too long: stop with a distinct exit code."""

    kind = "persistently_blocked"
    expected = True
    exit_code = 3


class SiteUnreachable(CorpusError):
    """The crawl's requests got no answer at all (network down, site or proxy gone): stop, so an
    outage does not fail the frontier's parents one after another."""

    kind = "unreachable"
    expected = True
    exit_code = 4


class DiskFull(CorpusError):
    """A write found no space left, for a file or in the database: every stage stops there, and what
    landed before it stays (a unit of work is done only when its last write lands)."""

    kind = "disk_full"
    expected = True


POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full
# SQLite's: the database's disk, and the -shm file (of the write-ahead log) that could not grow ("disk I/O
# error" as the driver words it, at every open of a database whose disk is full).
SQLITE_DISK_FULL = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR_SHMSIZE)
NOT_PERMITTED_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)
IN_THE_WAY_ERRNOS = (errno.ENOTDIR, errno.EEXIST)  # making a folder where a file is, or under one


def disk_full(exc: BaseException) -> DiskFull | None:
    """The :class:`DiskFull` that ``exc`` (or an error it was raised from) means, else None: ENOSPC on a
    file, SQLite's SQLITE_FULL, PostgreSQL's disk_full. Anything else is not ours to soften."""
    for error in _causes(exc):
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            where = f" writing {error.filename}" if error.filename else ""
            return DiskFull(f"no space left on the disk{where}: {_AFTER_DISK_FULL}")
        if isinstance(error, sqlite3.Error) and getattr(error, "sqlite_errorcode", None) in SQLITE_DISK_FULL:
            return DiskFull(f"the SQLite database's disk is full: {_AFTER_DISK_FULL}")
        if getattr(error, "sqlstate", None) == POSTGRES_DISK_FULL:
            return DiskFull(f"PostgreSQL's disk is full: {_AFTER_DISK_FULL}")
    return None


def not_permitted(exc: BaseException) -> ConfigError | None:
    """The one-line :class:`ConfigError` that ``exc`` (or an error it was raised from) means when the
    operating system refused a named file or folder (no permission, a read-only file system, a file where
    a folder must be), else None."""
    for error in _causes(exc):
        if not isinstance(error, OSError) or not error.filename:
            continue
        said = error.strerror.lower() if error.strerror else "not permitted"
        if error.errno in NOT_PERMITTED_ERRNOS:
            return ConfigError(
                f"{error.filename}: {said} (give this user the right to write there, or choose another location)"
            )
        if error.errno in IN_THE_WAY_ERRNOS:
            return ConfigError(
                f"{error.filename}: {said} (a file is where a folder must be: move it, or choose another location)"
            )
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it was raised from, innermost last."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)


_AFTER_DISK_FULL = "free some space, then run the same command again; what was written before stays"


# HTTP failures get one name wherever they happen (browser fetches, file downloads, page loads).
_HTTP_STATUS_KINDS = {403: "forbidden", 404: "not_found", 410: "gone"}


def http_status_kind(status: int) -> str:
    """The stable kind of an HTTP failure status: ``forbidden``, ``not_found``, ``gone``, else ``http_<code>``."""
    return _HTTP_STATUS_KINDS.get(status, f"http_{status}")


def is_transient_status(status: int) -> bool:
    """Statuses a later try of the same request can fix: 408, 429 and every 5xx."""
    return status in (408, 429) or status >= 500
