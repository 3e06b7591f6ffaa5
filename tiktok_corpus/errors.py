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
└── PersistentlyBlocked    the crawl saw only blocks; stop               expected, final (exit 3)
```
"""

from __future__ import annotations


class CorpusError(Exception):
    """Base of every error the library raises on purpose."""

    kind: str = "error"
    expected: bool = False
    retryable: bool = False
    exit_code: int = 1

    def __init__(
        self, message: str = "", *, kind: str | None = None, expected: bool | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message)
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


class PersistentlyBlocked(CorpusError):
    """The crawl saw nothing but blocks for too long: stop with a distinct exit code."""

    kind = "persistently_blocked"
    expected = True
    exit_code = 3


# HTTP failures get one name wherever they happen (browser fetches, file downloads, page loads).
_HTTP_STATUS_KINDS = {403: "forbidden", 404: "not_found", 410: "gone"}


def http_status_kind(status: int) -> str:
    """The stable kind of an HTTP failure status: ``forbidden``, ``not_found``, ``gone``, else ``http_<code>``."""
    return _HTTP_STATUS_KINDS.get(status, f"http_{status}")


def is_transient_status(status: int) -> bool:
    """Statuses a later try of the same request can fix: 408, 429 and every 5xx."""
    return status in (408, 429) or status >= 500
