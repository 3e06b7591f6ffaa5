"""``corpus browse``: a local, read-only web app over the corpus and, when given, an export and its runs.

The grid shows every video as a poster frame with its counts, label, split, the model's score and its
error, sorted and filtered by any of them, by hashtag and by author (:mod:`.catalog`); a video's page
plays the downloaded file and shows its snapshots over time, its author's, its related videos both ways, its probe
and its download attempts; the queue page shows what ``corpus status`` says (:mod:`.pages`). The server
(:mod:`.app`) binds to 127.0.0.1 by default, answers only requests that name this machine or the address
bound, and serves no file but the videos' own, their posters and the report. The SQL is in
:mod:`tiktok_corpus.store.browse`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from .poster_jobs import make_posters, make_posters_in_background, poster_cache_problem

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__, submod_attrs={"poster_jobs": ["make_posters", "make_posters_in_background", "poster_cache_problem"]}
)
