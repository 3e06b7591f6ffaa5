"""Learn virality from an export: the paper's R(2+1)D-18 network, LightGBM on the feature tables, or both
fused; score videos with a trained run; ablate the modalities.

``train`` loads torch (and the feature extractors) on first use, so importing the options (the CLI
does) costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .config import TrainConfig

if TYPE_CHECKING:
    from ..features import FeatureOptions

__all__ = ["TrainConfig", "ablate", "train"]


def train(config: TrainConfig, features: FeatureOptions | None = None) -> Path:
    """Train ``config.model`` on ``config.export_dir`` and write the run directory; returns it.

    gbdt and fusion read the feature tables of ``config.modalities`` (made with ``features``, or the
    extractors' defaults, and cached beside the export); the paper's network needs none. A resume takes
    the model and its modalities from the saved run, refused before any work when asked otherwise.
    """
    if config.resume:  # the loop reads the checkpoint again, for its weights
        from .checkpoints import resumed_config
        from .config import run_dir_for

        config = resumed_config(config, run_dir_for(config))[0]
    if config.model == "r2plus1d":
        from .loop import train as train_network

        return train_network(config)
    from .gbdt import train_gbdt
    from .loop import train as train_network

    _refuse_before_the_features(config)
    table, provenance = _feature_table(config, features)
    if config.model == "gbdt":
        return train_gbdt(config, table, provenance)
    return train_network(config, side=(table, provenance))


def ablate(config: TrainConfig, features: FeatureOptions | None = None, **options) -> Path:
    """``corpus ablate``: see :func:`.ablation.ablate`; the feature tables are made or read here."""
    from .ablation import ablate as run_ablation
    from .ablation import ablation_dir
    from .export_table import load_export

    options["out"] = ablation_dir(config, options.get("out"))  # refused, if used, before the features
    load_export(config.export_dir, label=config.label)
    table, provenance = _feature_table(config, features)
    return run_ablation(config, table, provenance, **options)


def _refuse_before_the_features(config: TrainConfig) -> None:
    """What the run would refuse only after its feature tables were made (minutes, with the video
    modality on a CPU): a used --out, options its label has no use for, an export it cannot train on."""
    from ..errors import ConfigError
    from .config import refuse_a_used_run_dir, refuse_class_options_without_classes, run_dir_for
    from .export_table import load_export

    if config.resume and config.model == "gbdt":
        raise ConfigError("--resume applies to the network's epochs; a gbdt run is refitted in seconds")
    if not config.resume:
        refuse_a_used_run_dir(run_dir_for(config))
    export = load_export(config.export_dir, label=config.label)
    if config.model == "fusion":
        refuse_class_options_without_classes(config, export.task)


def _feature_table(config: TrainConfig, features: FeatureOptions | None):
    from dataclasses import replace

    from ..features import FeatureOptions, load_features_and_provenance

    modalities = config.modality_list
    if config.model == "fusion":  # the network is the video modality; the others join before its head
        modalities = tuple(m for m in modalities if m != "video")
    # Without explicit feature settings: the tables the export already has (`corpus features`; of the
    # run's --weights when it was given them), else the extractors' defaults with the run's --weights.
    pinned = frozenset({"weights"} & config.explicit_options())
    base = features or FeatureOptions(weights=config.weights, reuse_cached=True, pinned=pinned)
    options = replace(base, modalities=modalities, device=config.device, progress=config.progress)
    return load_features_and_provenance(config.export_dir, modalities, options)
