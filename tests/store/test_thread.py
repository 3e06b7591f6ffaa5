"""The database thread's lease renewal (store/thread.py), shared by the download and the tracker: a
database busy, dropped or out of connections for a moment is tried again, a lost claim ends it, a bug
is not swallowed."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tiktok_corpus.store.thread import DatabaseThread


def renewals(answers: list) -> tuple[list[str], object]:
    """A renew callable that gives ``answers`` in turn (an exception is raised), and the calls it got."""
    calls: list[str] = []

    def renew():
        calls.append("renew")
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return calls, renew


def keep_renewed(renew) -> None:
    db = DatabaseThread("test")
    try:
        asyncio.run(asyncio.wait_for(db.keep_renewed(renew, lease_s=0.03, what="the test claim"), 10))
    finally:
        db.shutdown()


def test_a_busy_database_is_tried_again_and_a_lost_claim_ends_the_renewal(caplog):
    busy = OperationalError("UPDATE", {}, Exception("database is locked"))
    dropped = InterfaceError("UPDATE", {}, Exception("connection already closed"))
    calls, renew = renewals([None, busy, dropped, PoolTimeout("QueuePool limit reached"), True, False])
    with caplog.at_level(logging.WARNING):
        keep_renewed(renew)
    assert len(calls) == 6
    assert "renewing the test claim failed" in caplog.text and "database is locked" in caplog.text


def test_a_bug_in_the_renewal_is_raised_not_logged_forever():
    calls, renew = renewals([ValueError("a bug")])
    with pytest.raises(ValueError, match="a bug"):
        keep_renewed(renew)
    assert calls == ["renew"]
