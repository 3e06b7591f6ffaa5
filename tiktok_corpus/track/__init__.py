"""The track stage (``corpus track``): re-observe known videos on a schedule by age since posting."""

from .options import DEFAULT_AGES, TrackOptions, TrackProgress, TrackSummary, parse_ages
from .run import track, track_async

__all__ = ["DEFAULT_AGES", "TrackOptions", "TrackProgress", "TrackSummary", "parse_ages", "track", "track_async"]
