"""The local TikTok replica site: catalog, media generation, server and faults (tests, demo).

```python
from tiktok_corpus.replica import Replica, ReplicaConfig
with Replica(ReplicaConfig(videos=300, seed=0, faults={"empty_body": 0.1})) as rep:
    rep.base_url, rep.catalog.videos, rep.media_path(video_id), rep.set_faults({...}), rep.stats
```
"""

from .catalog import Catalog, CatalogVideo, MediaSpec, build_catalog
from .faults import FAULTS, ReplicaStats
from .server import Replica, ReplicaConfig

__all__ = [
    "FAULTS",
    "Catalog",
    "CatalogVideo",
    "MediaSpec",
    "Replica",
    "ReplicaConfig",
    "ReplicaStats",
    "build_catalog",
]
