"""What ``corpus ablate`` shows a user on a tiny export whose test split has one class: why every metric
is n/a, the baselines as n/a rather than an empty list, the random video backbone flagged, no
matplotlib warning, the ablation's folder in ``--json``, and what Ctrl-C keeps.

18 rows (12 train, 4 val, 2 test of one class), no video files: the feature tables are handed in (the
CLI's feature step is replaced by them), as ``corpus features --weights none`` would have made them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tiktok_corpus.train as train_package
from tiktok_corpus.cli import app
from tiktok_corpus.cli.learn import RANDOM_VIDEO_EMBEDDING
from tiktok_corpus.train import TrainConfig
from tiktok_corpus.train.ablation import ablate, ablation_figure, hold_to_the_family, holm_adjusted

from .conftest import write_export

SPLITS = ["train"] * 12 + ["val"] * 4 + ["test"] * 2
VIRAL = [0, 1] * 6 + [0, 1] * 2 + [0, 0]  # the test split: one class
MODALITIES = ("--modalities", "video,author,time")
ONE_CLASS = "undefined: the test split has one class"
RANDOM_BACKBONE = {"video": {"random_init": True}, "author": {"random_init": False}, "time": {"random_init": False}}


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> tuple[Path, pd.DataFrame]:
    """The export (its table and manifest) and its feature tables; ``corpus ablate`` gets the tables
    with the provenance of a random-init video backbone (its default ``--weights none``)."""
    rng = np.random.default_rng(0)
    n = len(SPLITS)
    root = tmp_path / "tiny-v1"
    root.mkdir()
    ids = [str(7_000_000_000_000_000_000 + i) for i in range(n)]
    files = [f"videos/{i}.mp4" for i in range(n)]
    videos = pd.DataFrame({"video_id": ids, "file": files, "split": SPLITS, "is_viral": VIRAL})
    write_export(root, videos.assign(follower_count=rng.integers(100, 10_000, n), duration_s=rng.uniform(5, 60, n)))
    index = pd.Index(ids, name="video_id")
    features = pd.DataFrame(
        {name: rng.standard_normal(n) for name in ("video.e0", "video.e1", "author.x", "time.a")}, index=index
    )
    monkeypatch.setattr(train_package, "_feature_table", lambda config, options: (features, RANDOM_BACKBONE))
    return root, features


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_one_class_test_split_is_written_with_its_reason(tiny, tmp_path):
    root, features = tiny
    config = TrainConfig(root, model="gbdt", modalities=MODALITIES[1], progress=False)

    out = ablate(config, features, RANDOM_BACKBONE, out=tmp_path / "ablation")

    result = json.loads((out / "ablation.json").read_text())
    assert all(row["metric"] is None and row["metric_note"] == ONE_CLASS for row in result["rows"])
    assert result["baselines"] == {"majority": None, "metadata": None}
    assert Path(result["export"]).is_absolute() and Path(result["export"]) == root.resolve()


def test_a_figure_without_any_baseline_or_metric_is_drawn_without_a_warning(tmp_path):
    """Matplotlib warned "No artists with labels found to put in legend" on stderr: the legend only
    holds the best baseline's line, which a test split of one class does not have."""
    rows = [{"name": name, "metric": None, "ci": None, "beats_baselines": False} for name in ("author", "time", "all")]
    importances = {"credible": False, "credibility": "not credible", "model": "all"}
    result = {"rows": rows, "main_metric": "roc_auc", "baselines": {"majority": None}, "oracles": {}}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ablation_figure({**result, "importances": importances}, tmp_path / "ablation.png")

    assert [str(w.message) for w in caught] == [] and (tmp_path / "ablation.png").stat().st_size > 0


def test_corpus_ablate_says_why_the_metric_is_n_a(tiny, tmp_path):
    root, _ = tiny

    result = CliRunner().invoke(app, ["ablate", str(root), *MODALITIES, "--out", str(tmp_path / "ablation")])

    assert result.exit_code == 0, result.output
    table = _flat(result.stdout)
    assert f"roc_auc {ONE_CLASS}" in table, table
    assert "baselines: majority n/a, metadata n/a" in table and "baselines: ;" not in table, table


def test_corpus_ablate_flags_the_random_video_backbone(tiny, tmp_path):
    root, _ = tiny

    result = CliRunner().invoke(app, ["ablate", str(root), *MODALITIES, "--out", str(tmp_path / "ablation")])

    assert result.exit_code == 0, result.output
    assert RANDOM_VIDEO_EMBEDDING in _flat(result.stderr), result.stderr


def test_corpus_ablate_json_names_its_folder(tiny, tmp_path, monkeypatch):
    root, _ = tiny
    monkeypatch.chdir(tmp_path)  # the folder given relative: the JSON still says where it is

    result = CliRunner().invoke(app, ["ablate", str(root), *MODALITIES, "--out", "relative/ablation", "--json"])

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    folder = Path(printed["ablation_dir"])
    assert folder.is_absolute() and folder == (tmp_path / "relative" / "ablation").resolve()
    assert (folder / printed["figure"]).is_file() and (folder / "ablation.json").is_file()
    assert printed["features"]["video"]["random_init"] is True
    assert RANDOM_VIDEO_EMBEDDING in _flat(result.stderr)  # stderr is free under --json: the warning stays


def test_ctrl_c_in_corpus_ablate_says_what_is_kept_and_how_to_go_on(tiny, monkeypatch):
    root, _ = tiny

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_package, "ablate", interrupted)

    result = CliRunner().invoke(app, ["ablate", str(root), *MODALITIES])

    assert result.exit_code != 0
    hint = _flat(result.stderr)
    assert "interrupted: the feature tables finished so far are cached" in hint, result.stderr
    assert "the same command goes on" in hint and not (root / "ablations").exists()


def test_a_line_claims_only_if_it_survives_holms_correction_over_the_lines():
    """Eleven lines tested at 5% each: every one at a p-value of 0.01 would have claimed to beat the
    baselines; held to the family, none does, while one at 0.001 still does, and the verdict says why."""
    assert holm_adjusted([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjusted([0.01, None]) == [pytest.approx(0.02), None]  # a missing one still counts
    rows = [
        {
            "name": f"line {i}",
            "p_value": 0.001 if i == 0 else 0.002,
            "paired_p_value": 0.001 if i == 0 else 0.01,  # the claim's p-value: the larger of the two
            "beats_baselines": True,
            "verdict": "The model beats every baseline.",
        }
        for i in range(11)
    ]
    hold_to_the_family(rows)
    assert rows[0]["beats_baselines"] and rows[0]["holm_p_value"] == pytest.approx(0.011)
    assert not any(row["beats_baselines"] for row in rows[1:])
    assert rows[1]["claim_p_value"] == 0.01 and rows[1]["holm_p_value"] == pytest.approx(0.1)
    assert rows[1]["verdict"] == (
        "The model beats every baseline. Not after Holm's correction over the 11 lines of this ablation "
        "(adjusted p=0.1)."
    )
