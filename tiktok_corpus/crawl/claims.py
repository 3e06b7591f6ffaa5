"""The parents one crawl process claimed from the frontier, until each has an outcome or goes back."""

from __future__ import annotations

import random
from collections import deque

from ..store import queue
from ..store.db import Store
from ..store.frontier import claim_parents
from ..store.thread import DatabaseThread
from ..store.workers import worker_name


class ParentClaims:
    """Parents claimed but not yet started (one claim fills them for every loop: a claim is a
    transaction) and those in hand (started, their outcome not yet written). Whatever stops the crawl,
    :meth:`give_back` returns both untried; a parent whose outcome landed is claimed no more."""

    def __init__(self, store: Store, *, strategy: str, batch: int, draw: random.Random | None = None) -> None:
        """``draw``: what the ``random`` strategy draws its parents with (:func:`.claim_parents`)."""
        self.store, self._strategy, self._batch, self._draw = store, strategy, batch, draw
        self.worker = worker_name(store, "crawl")
        self._unstarted: deque[str] = deque()
        self._in_hand: set[str] = set()

    @property
    def has_unstarted(self) -> bool:
        return bool(self._unstarted)

    def claim(self) -> None:
        """A batch from the frontier (on the database thread). The ids join the unstarted ones in the
        claim's own call, so a loop cancelled while it commits still leaves them to :meth:`give_back`."""
        self._unstarted.extend(claim_parents(self.store, self._strategy, self.worker, self._batch, draw=self._draw))

    def take(self) -> str | None:
        """The next unstarted parent, now in hand; None when none is left."""
        if not self._unstarted:
            return None
        parent_id = self._unstarted.popleft()
        self._in_hand.add(parent_id)
        return parent_id

    def settled(self, parent_id: str) -> None:
        """``parent_id``'s outcome is written (or it was given back by itself)."""
        self._in_hand.discard(parent_id)

    async def keep_renewed(self, db: DatabaseThread) -> None:
        """Renew the leases of the parents still claimed, unstarted or in hand, on ``db`` until cancelled:
        a fetch slowed past a lease (a low --max-rate, a suspended machine) must not hand its parent to
        another worker while it still fetches it."""
        await db.keep_renewed(self.renew, lease_s=queue.DEFAULT_LEASE_S, what="the crawl's parent claims")

    def renew(self) -> None:
        """One renewal of :meth:`keep_renewed` (on the database thread)."""
        queue.renew(self.store, "expand", [*self._unstarted, *self._in_hand], worker=self.worker)

    def give_back(self) -> None:
        """The parents still claimed at the end, unstarted or in hand (a stop cancelled their fetch, or
        the outcome's write queued behind others), back to the frontier untried (on the database thread,
        after the writes queued before it)."""
        queue.release(self.store, "expand", [*self._unstarted, *self._in_hand], worker=self.worker)
        self._unstarted.clear()
        self._in_hand.clear()
