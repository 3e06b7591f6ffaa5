"""A training run's link to the export it learned from: where its results are, which export that was,
and whether a ``--run`` given with an ``--export`` (``corpus report``, ``corpus browse``) belongs to it.

Two corpora crawled from the same site share video ids, and both their first exports are called
``corpus-v1``: neither the ids nor the name and version tell them apart. The identity used is the
export's content, its manifest's ``data_sha256`` (the hash of its video table), compared with that of the
export the run records (``metrics.json``'s ``run.export``, else ``config.json``'s ``export_dir``): a copy
of the export elsewhere is the same export; another corpus's export of the same name is not. Only when
the recorded export can no longer be found is the run's own folder (``EXPORT/runs/<time>``, which travels
with a copied export) or, last, the recorded name and version taken instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._files import newest_written, read_json_object
from ..errors import ConfigError
from .format import MANIFEST_FILE, read_manifest

EXPORT_IDENTITY = ("data_sha256", "label")  # an export's content: its table's bytes and which label they carry

if TYPE_CHECKING:
    from ..store.db import Store


class RunExportMismatch(ConfigError):
    """A ``--run`` that was trained on another export than the ``--export`` given with it."""

    kind = "run_export_mismatch"


def latest_run(export_dir: Path) -> Path | None:
    """The newest finished training run of an export (``EXPORT/runs/<time>/`` with a ``metrics.json``)."""
    newest = newest_written((Path(export_dir) / "runs").glob("*/metrics.json"))
    return newest.parent if newest else None


def run_metrics(run_dir: Path) -> dict:
    """A finished training run's ``metrics.json``."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a finished training run: no metrics.json")
    return read_json_object(path)


def run_export_dir(run_dir: Path) -> Path:
    """The export a finished run was trained on: the one it records, where that can still be found (a
    relative record is looked for from the run's own folder first), else as recorded, else the run's home."""
    recorded = run_metrics(run_dir).get("run", {}).get("export")
    return trained_on_export(Path(run_dir), recorded) or Path(recorded or Path(run_dir).parent.parent)


def export_for_run(run_dir: Path | None, export_dir: Path | None) -> Path | None:
    """The export whose rows a run's scores are shown on: the run's own when none is given; a given one
    only if the run was trained on it (:class:`RunExportMismatch` otherwise, see the module). A run folder
    without ``metrics.json`` is refused either way: beside an export it had no scores to show."""
    if run_dir is None:
        return export_dir
    if export_dir is None:
        return run_export_dir(run_dir)
    run_metrics(run_dir)
    _check_run_export(Path(run_dir), Path(export_dir))
    return export_dir


def another_corpus(store: Store, export_dir: Path | None) -> str | None:
    """A warning when ``export_dir`` was not exported from ``store``'s corpus (no export of its video table
    is recorded there): its labels, and its runs' scores, would be shown on this corpus's videos that
    share an id with its rows. None for this corpus's export (wherever it was moved), or none given."""
    from ..store.exports import made_export  # here: a run's config (the CLI's start) reads this module, not SQL

    if export_dir is None:
        return None
    manifest = read_manifest(export_dir)
    if made_export(store, manifest.get("data_sha256")):
        return None
    return (
        f"{export_dir} ({_identity(manifest)}) was not exported from this corpus ({store.safe_url}) but from "
        f"{manifest.get('source_database', 'an unknown database')}: its labels and scores are shown on this "
        "corpus's videos that share an id with its rows"
    )


def _check_run_export(run_dir: Path, export_dir: Path) -> None:
    manifest = read_manifest(export_dir)
    recorded = _recorded(run_dir)
    trained_on = trained_on_export(run_dir, recorded.get("export"))
    if trained_on is not None:
        if same_export(trained_on, export_dir):
            return
        about = _identity(read_manifest(trained_on))
        raise RunExportMismatch(_refusal(run_dir, f"{trained_on} ({about})", export_dir, _identity(manifest)))
    name, version = recorded.get("export_name"), recorded.get("export_version")
    if name is not None and (name, version) != (manifest.get("name"), manifest.get("version")):
        raise RunExportMismatch(_refusal(run_dir, f"{name} v{version}", export_dir, _identity(manifest)))


def _recorded(run_dir: Path) -> dict:
    """What the run says about its export: ``export`` (the path as training was given it) and, from
    ``metrics.json``, ``export_name`` and ``export_version``; empty where the run says nothing."""
    config_path = run_dir / "config.json"
    run = run_metrics(run_dir).get("run", {})
    if not run.get("export") and config_path.is_file():
        run = {**run, "export": read_json_object(config_path).get("export_dir")}
    return run


def trained_on_export(run_dir: Path, recorded: str | Path | None) -> Path | None:
    """The export directory the run was trained on, where it can still be found. A recorded absolute path
    comes first; a relative one was relative to where training ran, so the export the run's folder sits
    in (``EXPORT/runs/<time>``) is the surer guess for it."""
    run_dir, recorded = Path(run_dir), str(recorded) if recorded else None
    home = run_dir.resolve().parent.parent
    candidates = [Path(recorded)] if recorded and Path(recorded).is_absolute() else []
    candidates += [home] if run_dir.resolve().parent.name == "runs" else []
    candidates += [Path(recorded)] if recorded and not Path(recorded).is_absolute() else []
    return next((path for path in candidates if (path / MANIFEST_FILE).is_file()), None)


def same_export(first: Path, second: Path) -> bool:
    """One folder, or two exports holding the same video table labelled alike (a copy). The table holds
    both label columns: `--labels binary` and `--labels continuous` of one corpus write the same bytes,
    and a run of one would show the other's label beside its scores, or resume on another loss."""
    first, second = Path(first), Path(second)
    if first.resolve() == second.resolve():
        return True
    if not ((first / MANIFEST_FILE).is_file() and (second / MANIFEST_FILE).is_file()):
        return False
    ours, theirs = read_manifest(first), read_manifest(second)
    return ours.get("data_sha256") is not None and all(ours.get(key) == theirs.get(key) for key in EXPORT_IDENTITY)


def _identity(manifest: dict) -> str:
    digest = manifest.get("data_sha256")
    data = f", data {digest[:12]}, labels {manifest.get('label')}" if digest else ""
    return f"{manifest.get('name')} v{manifest.get('version')}" + data


def _refusal(run_dir: Path, trained_on: str, export_dir: Path, given: str) -> str:
    return (
        f"--run {run_dir} was trained on {trained_on}, not on --export {export_dir} ({given}): its scores would "
        "be shown on another corpus's rows; give the run's own export, or --run alone (it brings its export)"
    )
