"""Per-video feature tables for every modality of an export, cached beside it.

``video`` (a frozen torchvision backbone over the trainer's proxies), ``audio`` (log-mel statistics,
loudness, onsets, silence), ``text`` (caption+hashtag TF-IDF fitted on the train split, reduced by SVD;
counts), ``author`` (profile counts; the median popularity of the author's OTHER train videos known
when the row was posted) and
``time`` (posting hour and weekday, file properties, original sound). Tables live in
``EXPORT/features/`` keyed by the export's table and the settings (:mod:`.cache`); ``load_features``
joins them into one frame for ``corpus train --model gbdt|fusion``.

Importing this package loads neither torch nor librosa: the extractors load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from .options import BACKBONES, MODALITIES, FeatureOptions, FeatureSummary, ModalityResult
    from .run import extract_features, feature_provenance, load_features, load_features_and_provenance

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "options": ["BACKBONES", "MODALITIES", "FeatureOptions", "FeatureSummary", "ModalityResult"],
        "run": ["extract_features", "feature_provenance", "load_features", "load_features_and_provenance"],
    },
)
