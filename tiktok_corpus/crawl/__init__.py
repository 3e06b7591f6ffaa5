"""Discovery, the way the paper built its corpus: For You seeds, then related-video expansion.

The frontier is the ``videos`` table: a video waits in ``expand_status = pending`` until a worker
claims it, fetches its related list and, in one transaction (shared with the other expansions fetched
meanwhile, see :mod:`.writes`), adds up to ``fanout`` new videos, records an edge (with rank) to every
related video in the corpus, appends a stats snapshot per sighting and marks the parent ``expanded``.
A crawl killed at any moment therefore resumes where it stopped (a parent whose write had not landed is
claimed again), and several processes on one Postgres share the work through row claims.

``random`` draws each claim's parents uniformly from every claimable row (a ``random.Random`` seeded by
``--seed``), as the paper expands "a random not-yet-expanded video"; ``bfs`` expands by depth, then
discovery time.

* :mod:`.options` - what a crawl is asked to do and what it reports;
* :mod:`.run` - the crawl itself: browser sessions, the expansion loops, the run's bookkeeping;
* :mod:`.writes` - the expansions, written behind the loops, several per transaction;
* :mod:`tiktok_corpus.store.crawl` - the crawl's statements (expansions, counts), on the rows of
  :mod:`tiktok_corpus.store.sightings`; :mod:`tiktok_corpus.store.frontier` - the frontier's claims and
  outcomes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from .options import CrawlCounters, CrawlOptions, CrawlProgress, CrawlSummary
    from .run import crawl, crawl_async

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "options": ["CrawlCounters", "CrawlOptions", "CrawlProgress", "CrawlSummary"],
        "run": ["crawl", "crawl_async"],
    },
)
