"""The track stage (``corpus track``): re-observe known videos on a schedule by age since posting."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from .options import DEFAULT_AGES, TrackOptions, TrackProgress, TrackSummary, parse_ages
    from .run import track, track_async

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "options": ["DEFAULT_AGES", "TrackOptions", "TrackProgress", "TrackSummary", "parse_ages"],
        "run": ["track", "track_async"],
    },
)
