"""The corpus report: the paper's figures and the crawl's own, as one self-contained HTML page.

Figures (PNG files beside the page, and embedded in it as data URIs so the page works on its own):
video duration (the paper's Fig. 1), the engagement table and log-scale distributions (Fig. 2), the
virality score (Fig. 3) and the binary label (Fig. 4); then fps, resolution, frame count, corpus
growth over crawl time, discovery depth and the top hashtags. Last, growth by age since posting from
the stats snapshots (:mod:`.growth`): plays by age bin (median and quartiles, by class with an
export's labels), snapshot coverage and ages at first sighting; until videos are re-observed
(``corpus track``) only the first sightings and a note saying so.

Dataset figures use an export's rows and labels when one is given, otherwise the rows an export would
take now (labels fitted on the fly). Crawl figures (growth, depth, hashtags) come from the database.
Matplotlib draws through its Agg canvas (``Figure`` objects, no pyplot state); nothing touches the network.
:mod:`.figures` holds what is shown, :mod:`.build` reads and writes; the SQL is in
:mod:`tiktok_corpus.store.reports`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from .build import build_report
    from .figures import engagement_table

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__, submod_attrs={"build": ["build_report"], "figures": ["engagement_table"]}
)
