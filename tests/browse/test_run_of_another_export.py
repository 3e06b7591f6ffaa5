"""``corpus browse --export E --run R`` with R trained on another corpus's export (the same video ids,
the same ``corpus-v1`` name) is refused in one line: it served R's scores on E's rows."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.export.test_report_run import two_corpora
from tiktok_corpus.browse.app import BrowseServer
from tiktok_corpus.browse.catalog import Catalog
from tiktok_corpus.cli import app
from tiktok_corpus.export.runs import RunExportMismatch


def test_the_catalog_takes_only_a_run_of_its_export(store, tmp_path):
    (d1, d1_run), (_, d2_run) = two_corpora(tmp_path)

    with pytest.raises(RunExportMismatch, match="was trained on"):
        Catalog(store, d1, d2_run)
    own = Catalog(store, d1, d1_run)
    assert own.labels["score"].notna().sum() == 4  # its val and test rows


def test_corpus_browse_refuses_another_corpuss_run_in_one_line(settings, store, tmp_path, monkeypatch):
    (d1, _), (_, d2_run) = two_corpora(tmp_path)
    served = []
    monkeypatch.setattr(BrowseServer, "wait", lambda self: served.append(self.base_url))  # never serves on

    result = CliRunner().invoke(
        app, ["--data-dir", str(settings.data_dir), "browse", "--export", str(d1), "--run", str(d2_run), "--port", "0"]
    )

    assert result.exit_code == 1 and served == [], result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "was trained on" in result.stderr, result.stderr


@pytest.mark.parametrize("not_a_run", ["another_export", "missing"])
def test_a_run_that_is_no_finished_run_is_refused_beside_an_export_as_alone(
    settings, store, tmp_path, monkeypatch, not_a_run
):
    """``--run`` given an export folder (a typo away from its run) or no folder at all: with ``--export`` too
    it was taken without a look and the grid showed no scores, without a word."""
    (d1, _), (d2, _) = two_corpora(tmp_path)
    run = d2 if not_a_run == "another_export" else tmp_path / "no-such-run"
    served = []
    monkeypatch.setattr(BrowseServer, "wait", lambda self: served.append(self.base_url))

    result = CliRunner().invoke(
        app, ["--data-dir", str(settings.data_dir), "browse", "--export", str(d1), "--run", str(run), "--port", "0"]
    )

    assert result.exit_code == 1 and served == [], result.output
    assert result.stderr.strip() == f"error: {run} is not a finished training run: no metrics.json", result.stderr
