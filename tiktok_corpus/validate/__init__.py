"""The validation stage: turn downloaded files into trusted training inputs.

One run has three passes, each safe to interrupt and repeat:

1. **Requeue** - finished rows whose file may no longer match their probe go back to ``pending``:
   the download's ``sha256`` differs from ``probed_sha256`` (a re-download), the file on disk changed
   since it was probed (size differs or modified after ``probed_at``), a missing file appeared or a
   present one vanished, a previous run's internal ``error``, or ``deep`` is asked for and a video
   stream was never decoded (``frame_count_method != "decode"``). A file found ``changed`` (below) goes
   back only once written again: its probe already read other bytes than the download's. Everything
   else keeps its probe.
2. **Probe** - ``pending`` rows are claimed from the queue a few at a time, hashed and probed by a
   bounded thread pool (:mod:`.inspection`), and each result lands in one transaction with its
   outcome. Bytes whose hash is not the download's ``sha256`` (damaged or replaced since) are
   ``corrupt`` (``changed``) without a probe: not what the site served, whatever they hold. Their hash
   goes to ``probed_sha256`` only; ``sha256`` stays the download's record, and ``download
   --retry-failed`` fetches the file again. The probe runs in-process (PyAV): about 95% of it is inside
   libav's open and stream-info calls, which release the GIL as hashlib does, so N threads use N cores;
   only ffprobe fallbacks and ``--deep``'s ffmpeg are processes.
3. **Reclassify** - every row probed from its current bytes gets its outcome again from the stored
   probe columns under this run's thresholds, so changing ``min_frames`` never probes again.

Outcomes (:mod:`.rules`): ``valid | too_short | no_video | tiny_frames | zero_duration`` (measured,
re-classifiable), ``corrupt`` (``probe_error_kind`` says why: empty, truncated, unreadable,
decode_error, or changed: not the downloaded bytes) and ``missing_file``. Nothing is ever deleted. An
unexpected exception on one file, or a probe past its time (``timeout``), marks it ``error`` (never a
success) and the next run retries it. Every statement is in :mod:`tiktok_corpus.store.probes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from .rules import MEASURED_OUTCOMES, OUTCOMES, Rules, classify
    from .run import ValidateSummary, run_validate

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "rules": ["MEASURED_OUTCOMES", "OUTCOMES", "Rules", "classify"],
        "run": ["ValidateSummary", "run_validate"],
    },
)
