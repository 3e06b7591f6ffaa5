"""The outcomes of validation and the rule that turns measured probe fields into one."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import PAPER_MIN_FRAMES, described

MEASURED_OUTCOMES = ("valid", "too_short", "no_video", "tiny_frames", "zero_duration")
OUTCOMES = (*MEASURED_OUTCOMES, "corrupt", "missing_file")
INTERNAL_ERROR = "error"
# The ``corrupt`` kind of a file whose bytes hash otherwise than the download recorded: not what the site
# served, whatever they hold, so not probed; ``download --retry-failed`` fetches it again.
CHANGED = "changed"


@dataclass(frozen=True)
class Rules:
    """The thresholds that turn a probe into an outcome (the paper excludes < 100 frames)."""

    min_frames: int = described(PAPER_MIN_FRAMES, "Fewer frames than this: excluded (too_short).")
    min_side: int = described(2, "Narrower or lower frames than this: tiny_frames (a placeholder, not a video).")


def classify(media, rules: Rules) -> tuple[str, str | None]:
    """Outcome and reason from probe fields (a ProbeResult or a probed MediaFile row)."""
    if media.video_codec is None:
        return "no_video", "no video stream"
    if (media.width or 0) < rules.min_side or (media.height or 0) < rules.min_side:
        return "tiny_frames", f"{media.width}x{media.height} frames"
    if not media.duration_s or media.duration_s <= 0:
        return "zero_duration", f"duration {media.duration_s}"
    if (media.frame_count or 0) < rules.min_frames:
        return "too_short", f"{media.frame_count} frames < {rules.min_frames}"
    return "valid", None


def measured_outcome(media, rules: Rules) -> tuple[str, str | None, str | None]:
    """``(status, error_kind, error)`` as the queue records a measured outcome: the kind names the
    outcome, except for ``valid``, which has none."""
    outcome, reason = classify(media, rules)
    return outcome, None if outcome == "valid" else outcome, reason
