"""The local TikTok replica site: catalog, media generation, server and faults (tests, demo).

```python
from tiktok_corpus.replica import Replica, ReplicaConfig
with Replica(ReplicaConfig(videos=300, seed=0, faults={"empty_body": 0.1})) as rep:
    rep.base_url, rep.catalog.videos, rep.media_path(video_id), rep.set_faults({...}), rep.stats
```

The names load on first use, so reading :class:`ReplicaConfig` (the CLI's options) costs no server imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalog import Catalog, CatalogVideo, MediaSpec, build_catalog
    from .config import ReplicaConfig
    from .faults import FAULTS, ReplicaStats
    from .server import Replica

_HOMES = {
    "Catalog": "catalog",
    "CatalogVideo": "catalog",
    "MediaSpec": "catalog",
    "build_catalog": "catalog",
    "FAULTS": "faults",
    "ReplicaStats": "faults",
    "Replica": "server",
    "ReplicaConfig": "config",
}
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


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
