"""``--model fusion`` end to end on CPU: the paper's network with a side vector joined before its head.

A dedicated export of 160 tiny videos (96 train / 24 val / 40 test) whose labels are coin flips, so the
pixels carry nothing; the side table holds one column that follows the label (label + N(0, 0.5), an AUC
of about 0.9 by itself) and one of noise. A run that beats the majority baseline with significance has
learned through the side path. The backbone is frozen here: on 96 random-pixel clips its own training
is noise that 96 steps cannot average out (measured: unfrozen, train loss stays at chance), while the
head learns the side column (measured AUC 0.80, p < 0.001). The unfrozen path is the paper's model's,
which test_training.py shows learning from pixels.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tiktok_corpus import train as train_package
from tiktok_corpus.cli import app
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.train import TrainConfig
from tiktok_corpus.train.loop import train as train_network
from tiktok_corpus.train.predict import predict

from .conftest import build_synthetic_export, write_export

pytestmark = pytest.mark.slow(30)

TINY = dict(frames=8, size=16, batch_size=8, seed=0, progress=False)
SPLITS = ["train"] * 96 + ["val"] * 24 + ["test"] * 40


@pytest.fixture(scope="module")
def coin_flip_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("coin-flips")
    videos = build_synthetic_export(root, splits=SPLITS, seconds=(1.2,))
    videos["is_viral"] = np.random.default_rng(1).integers(0, 2, len(videos))
    return write_export(root, videos)


def _side_table(export_dir) -> pd.DataFrame:
    videos = pd.read_parquet(export_dir / "videos.parquet")
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "author.follows_label": videos["is_viral"].to_numpy() + rng.normal(0, 0.5, len(videos)),
            "time.noise": rng.standard_normal(len(videos)),
        },
        index=videos["video_id"],
    )


def test_fusion_learns_through_its_side_inputs(coin_flip_export, tmp_path):
    config = TrainConfig(
        coin_flip_export, model="fusion", epochs=8, freeze_backbone=True, out=tmp_path / "fusion", **TINY
    )
    provenance = {"author": {"random_init": False}}

    run_dir = train_network(config, side=(_side_table(coin_flip_export), provenance))

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run"]["model"] == "fusion"
    assert metrics["run"]["modalities"] == ["video", "author", "time"]
    assert metrics["beats_baselines"] and metrics["model"]["p_value"] < 0.05, metrics["verdict"]
    assert metrics["model"]["roc_auc"] > metrics["baselines"]["majority"]["roc_auc"] + 0.2
    with pytest.raises(ConfigError, match="fusion run"):
        next(predict([coin_flip_export / "videos" / "x.mp4"], run_dir))
    (run_dir / "config.json").unlink()  # its checkpoint says fusion too: a forward without its side inputs failed
    with pytest.raises(ConfigError, match="fusion run"):
        next(predict([coin_flip_export / "videos" / "x.mp4"], run_dir))


def test_fusion_without_side_modalities_is_a_clear_error(coin_flip_export, tmp_path):
    config = TrainConfig(coin_flip_export, model="fusion", epochs=1, out=tmp_path / "f", **TINY)
    empty = pd.DataFrame(index=pd.read_parquet(coin_flip_export / "videos.parquet")["video_id"])

    with pytest.raises(ConfigError, match="at least one modality besides video"):
        train_network(config, side=(empty, {}))
    with pytest.raises(ConfigError, match="at least one modality besides video"):  # not "unknown modality"
        TrainConfig(coin_flip_export, model="fusion", modalities="video")


def test_a_fusion_run_resumes_as_fusion_on_its_modalities_without_naming_them(coin_flip_export, tmp_path, monkeypatch):
    """`corpus train E --resume --epochs 2` on a fusion run: the saved run decides the model and the
    modalities of its side table (the command's defaults, the network alone and every modality, would
    have loaded its weights into the wrong model)."""
    run_dir = tmp_path / "fusion"
    first = TrainConfig(coin_flip_export, model="fusion", modalities="video,author,time", epochs=1, out=run_dir, **TINY)
    side = (_side_table(coin_flip_export), {"author": {"random_init": False}})
    train_network(first, side=side)
    asked = []
    monkeypatch.setattr(train_package, "_feature_table", lambda config, features: asked.append(config) or side)

    resume = TrainConfig(coin_flip_export, resume=True, out=run_dir, epochs=2, given_options=frozenset({"epochs"}))
    train_package.train(resume)

    ((config,),) = [asked]
    assert (config.model, config.modality_list) == ("fusion", ("video", "author", "time"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["run"]["model"] == "fusion" and len(pd.read_csv(run_dir / "history.csv")) == 2

    # Tables made since with other settings: another width failed with a traceback from load_state_dict,
    # other values under the same width went on silently.
    table, _ = side
    for other in (
        (table.assign(**{"time.more": np.linspace(0, 1, len(table))}), side[1]),
        (table, {"author": {"random_init": False, "settings": {"version": 7}}}),
    ):
        monkeypatch.setattr(train_package, "_feature_table", lambda config, features, other=other: other)
        again = TrainConfig(coin_flip_export, resume=True, out=run_dir, epochs=3, given_options=frozenset({"epochs"}))
        with pytest.raises(ConfigError, match=r"--resume: .* trained on side inputs of other (width|settings) than"):
            train_package.train(again)
    assert len(pd.read_csv(run_dir / "history.csv")) == 2

    # Its own --modalities given again changes nothing: the command's default model, which has no use for
    # them, refused it ("--modalities does not apply to --model r2plus1d").
    monkeypatch.setattr(train_package, "_feature_table", lambda config, features: side)
    command = ["train", str(coin_flip_export), "--resume", "--out", str(run_dir), "--epochs", "3"]
    given_again = CliRunner().invoke(app, [*command, "--modalities", "video,author,time"])
    assert given_again.exit_code == 0, given_again.output
    assert len(pd.read_csv(run_dir / "history.csv")) == 3
