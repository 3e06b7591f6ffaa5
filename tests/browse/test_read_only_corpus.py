"""A corpus on a read-only medium (a read-only mount, a copy shared read-only): ``corpus browse`` and
``corpus status`` read it (SQLite in WAL mode could not even open it), and what cannot be read there
is a clear error."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tiktok_corpus.browse.app import BrowseServer
from tiktok_corpus.browse.catalog import Catalog
from tiktok_corpus.browse.poster_jobs import poster_cache_problem
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.models import Video

from .conftest import DemoCorpus, copy_of

pytestmark = pytest.mark.slow(10)

CORPUS = Path(sys.executable).with_name("corpus")


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made read-only for this process: by file modes for a user, by a read-only bind mount
    for root (whom modes do not stop). Skipped, saying why, where root may not mount."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")] if path.is_dir()}
        for path in modes:
            path.chmod(0o555)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", folder, folder], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"root cannot make a read-only folder here (mount --bind: {mounted.stderr.strip()})")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", folder], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", "--lazy", folder], check=True, capture_output=True)  # a file left open too


def _settings_env(corpus: DemoCorpus) -> dict[str, str]:
    settings = corpus.settings
    return {**os.environ, "CORPUS_DATA_DIR": str(settings.data_dir), "CORPUS_DB_URL": str(settings.db_url)}


def test_a_read_only_corpus_is_browsed_and_counted(demo_corpus, tmp_path):
    corpus = copy_of(demo_corpus, tmp_path)
    data_dir = corpus.settings.data_dir
    shutil.rmtree(data_dir / "posters", ignore_errors=True)
    before = sorted(path.relative_to(data_dir) for path in data_dir.rglob("*"))
    with read_only(data_dir):
        assert poster_cache_problem(data_dir) == f"{data_dir} cannot be written (only those made before are shown)"
        with open_store(corpus.settings, create=False, reads_only=True) as store:
            catalog = Catalog(store, corpus.export_dir)
            downloaded = catalog.rows().dropna(subset=["media_path"])["video_id"].iloc[0]
            with BrowseServer(corpus.settings, store, catalog) as server, httpx.Client(timeout=30) as http:
                assert http.get(server.base_url).status_code == 200
                assert http.get(f"{server.base_url}/video/{downloaded}").status_code == 200
                assert http.get(f"{server.base_url}/media/{downloaded}").status_code == 200
                assert http.get(f"{server.base_url}/poster/{downloaded}.jpg").status_code == 404  # none cached
        status = subprocess.run(
            [CORPUS, "status", "--json"], capture_output=True, text=True, env=_settings_env(corpus), timeout=120
        )
        assert status.returncode == 0, status.stderr
        assert '"videos"' in status.stdout
        # It only reads too (it said "unable to open database file", exit 1: "no database")
        revision = subprocess.run(
            [CORPUS, "db", "current", "--json"], capture_output=True, text=True, env=_settings_env(corpus), timeout=120
        )
        assert revision.returncode == 0 and json.loads(revision.stdout)["up_to_date"], revision.stderr
    assert sorted(path.relative_to(data_dir) for path in data_dir.rglob("*")) == before


def test_a_read_only_corpus_with_writes_in_its_log_is_read_through_its_shm_or_refused(demo_corpus, tmp_path):
    """A copy taken while a writer had pages in the write-ahead log. With its ``-shm`` beside it SQLite
    reads the log read-only; without it, reading the log needs a file written beside it, and reading the
    database as immutable would miss the writes: refused, saying why."""
    corpus = copy_of(demo_corpus, tmp_path)
    database = Path(str(corpus.settings.db_url).removeprefix("sqlite:///"))
    writer = sqlite3.connect(database)
    copies = {"with_shm": tmp_path / "with-shm", "without_shm": tmp_path / "without-shm"}
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("UPDATE videos SET desc = 'changed after the last checkpoint'")
        writer.commit()
        for name, copy in copies.items():
            copy.mkdir()
            for path in database.parent.glob(f"{database.name}*"):  # the file, its -wal and -shm (not -workers/)
                if path.is_file() and (name == "with_shm" or not path.name.endswith("-shm")):
                    shutil.copy(path, copy / path.name)
    finally:
        writer.close()
    assert (copies["without_shm"] / f"{database.name}-wal").stat().st_size > 0
    for name, copy in copies.items():
        settings = corpus.settings.model_copy(update={"db_url": f"sqlite:///{copy / database.name}"})
        with read_only(copy):
            if name == "without_shm":
                with pytest.raises(ConfigError, match="its folder is read-only and its write-ahead log"):
                    open_store(settings, create=False, reads_only=True)
                continue
            with open_store(settings, create=False, reads_only=True) as store, store.sessions() as session:
                captions = set(session.scalars(select(Video.desc)))
        assert captions == {"changed after the last checkpoint"}  # the log's writes, read


def test_a_link_to_a_database_on_a_read_only_medium_is_read_there(demo_corpus, tmp_path):
    """The ``-shm`` would be made beside the file the link names: it is that folder that is read-only."""
    corpus = copy_of(demo_corpus, tmp_path)
    database = Path(str(corpus.settings.db_url).removeprefix("sqlite:///"))
    linked = tmp_path / "writable" / "corpus.db"
    linked.parent.mkdir()
    linked.symlink_to(database)
    settings = corpus.settings.model_copy(update={"db_url": f"sqlite:///{linked}"})
    with read_only(database.parent), open_store(settings, create=False, reads_only=True) as store:
        assert len(Catalog(store).rows()) > 0


def test_a_command_that_writes_a_read_only_corpus_is_told_its_folder_cannot_be_written(demo_corpus, tmp_path):
    """``corpus export`` (or validate, download, crawl) on a read-only corpus said only "unable to open
    database file", SQLite's words for a -wal it could not make."""
    corpus = copy_of(demo_corpus, tmp_path)
    data_dir = corpus.settings.data_dir
    with read_only(data_dir), pytest.raises(ConfigError) as refused:
        open_store(corpus.settings, create=False)
    assert str(refused.value) == (
        f"cannot open database {corpus.settings.db_url}: unable to open database file ({data_dir} cannot be "
        "written: a read-only mount, or another user's folder; `corpus status` and `corpus browse` can read it)"
    )
