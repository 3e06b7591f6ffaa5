"""The local TikTok replica site: catalog, media generation, server and faults (tests, demo).

```python
from tiktok_corpus.replica import Replica, ReplicaConfig
with Replica(ReplicaConfig(videos=300, seed=0, faults={"empty_body": 0.1})) as rep:
    rep.base_url, rep.catalog.videos, rep.media_path(video_id), rep.set_faults({...}), rep.stats
```

The names load on first use, so reading :class:`ReplicaConfig` (the CLI's options) costs no server imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from .catalog import Catalog, CatalogVideo, MediaSpec, build_catalog
    from .config import ReplicaConfig
    from .faults import FAULTS, ReplicaStats
    from .server import Replica

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "catalog": ["Catalog", "CatalogVideo", "MediaSpec", "build_catalog"],
        "config": ["ReplicaConfig"],
        "faults": ["FAULTS", "ReplicaStats"],
        "server": ["Replica"],
    },
)
