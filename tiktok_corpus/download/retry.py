"""The retry policy of one request (a file URL, an item page): tenacity, transient kinds only."""

from __future__ import annotations

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from ..errors import CorpusError
from .jobs import CannotWrite
from .options import DownloadOptions


def retrying(options: DownloadOptions) -> AsyncRetrying:
    """At most ``attempts`` tries within ``retry_budget_s``, backing off; the last error is re-raised."""
    return AsyncRetrying(
        stop=stop_after_attempt(options.attempts) | stop_after_delay(options.retry_budget_s),
        wait=_WaitRespectingRetryAfter(options),
        retry=retry_if_exception(_is_transient),
        reraise=True,
    )


def _is_transient(exc: BaseException) -> bool:
    """Only kinds marked retryable: transport errors, timeouts, 408/429/5xx, short bodies, bot blocks."""
    return isinstance(exc, CorpusError) and exc.retryable and not isinstance(exc, CannotWrite)


class _WaitRespectingRetryAfter:
    """Exponential backoff with jitter, but never shorter than the server's Retry-After (capped)."""

    def __init__(self, options: DownloadOptions) -> None:
        self._base = wait_exponential_jitter(
            multiplier=options.backoff_initial_s, max=options.backoff_max_s, jitter=options.backoff_initial_s
        )
        self._cap = options.backoff_max_s

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return max(self._base(retry_state), min(getattr(error, "retry_after", 0.0), self._cap))
