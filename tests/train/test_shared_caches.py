"""Two trainers, or two ``corpus features``, on one export at once: the caches they share.

Each writer makes a file under a scratch name of its own and renames it into place, so two making the
same proxy or feature table at the same moment both succeed (they used to share one ``.part`` name: one
renamed it away under the other, which then reported "no video frames" or failed its rename). The
scratch files of a writer that was killed are removed by the next one; a live writer's are left.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from tiktok_corpus import media
from tiktok_corpus._files import remove_abandoned_scratch, scratch_path
from tiktok_corpus.errors import DiskFull
from tiktok_corpus.features.cache import CacheEntry, read_cached, write_cached
from tiktok_corpus.train.clips import read_clip
from tiktok_corpus.train.export_table import load_export
from tiktok_corpus.train.proxies import build_cache, encode_proxy, proxy_dir


@pytest.fixture
def dead_pid() -> int:
    """The id of a process of this host that has ended (as a killed writer's has)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _leftovers(target, dead_pid):
    """Scratch files beside ``target``: a killed writer's, this process's (live), another host's."""
    mine = scratch_path(target)
    names = {
        "killed": mine.name.replace(f"_{os.getpid()}_", f"_{dead_pid}_"),
        "live": mine.name,
        "elsewhere": f"{target.name}_other-host.example_{dead_pid}_0123abcd.part",
    }
    for name in names.values():
        (target.parent / name).write_bytes(b"half")
    return names


def test_two_writers_of_one_proxy_at_once_both_get_it_whole(signal_export, tmp_path, monkeypatch):
    both_encoded = threading.Barrier(2, timeout=60)
    run_tool = media.run_tool

    def encode_then_wait(*args, **kwargs):  # both encodings are done before either renames its file
        result = run_tool(*args, **kwargs)
        both_encoded.wait()
        return result

    monkeypatch.setattr(media, "run_tool", encode_then_wait)
    export = load_export(signal_export)
    source = export.root / export.table["file"].iloc[0]
    target = tmp_path / "proxies" / "same.mp4"
    with ThreadPoolExecutor(2) as pool:
        made = list(pool.map(lambda _: encode_proxy(source, target, 16), range(2)))

    assert made == [target, target]
    assert [path.name for path in target.parent.iterdir()] == ["same.mp4"]
    _, valid = read_clip(target, 4)
    assert valid == 4


def test_a_proxy_the_disk_filled_under_is_disk_full_and_never_kept(signal_export, small_disk):
    """ffmpeg exits 0 when the disk fills as it writes the mp4's index: the cut proxy was kept (and reused
    by every later training run), and predict called each video after it corrupt."""
    disk = small_disk("64k")
    (disk / "filler").write_bytes(bytes(60 * 1024))  # a 4 KiB page left
    export = load_export(signal_export)
    target = disk / "proxies" / "0.mp4"

    with pytest.raises(DiskFull, match="no space left on the disk"):  # a 64x64 proxy is about 24 KB, written
        encode_proxy(export.root / export.table["file"].iloc[0], target, 64)  # in one go by the trailer

    assert list(target.parent.iterdir()) == []


def test_a_killed_encoders_scratch_file_is_removed_by_the_next_cache_build(signal_export, tmp_path, dead_pid):
    export = load_export(signal_export)
    two = export.__class__(export.root, export.manifest, export.table.head(2))
    directory = proxy_dir(tmp_path, 16)
    directory.mkdir(parents=True)
    left = _leftovers(directory / f"{two.table['sha256'].iloc[0]}.mp4", dead_pid)

    proxies = build_cache(two, 16, tmp_path, progress=False)

    kept = {path.name for path in directory.glob("*.part")}
    assert kept == {left["live"], left["elsewhere"]}
    assert all(path.is_file() for path in proxies.values())


def test_a_host_whose_name_files_cannot_carry_still_cleans_its_killed_writers_files(tmp_path, monkeypatch, dead_pid):
    """A file's name carries "build-box" for the host build_box: the dead writer it names is build_box's."""
    monkeypatch.setattr(socket, "gethostname", lambda: "build_box")
    left = _leftovers(tmp_path / "table.parquet", dead_pid)
    assert "_build-box_" in left["killed"]
    assert remove_abandoned_scratch(tmp_path) == 1
    assert {path.name for path in tmp_path.glob("*.part")} == {left["live"], left["elsewhere"]}


def test_two_writers_of_one_feature_table_at_once_both_land_it(tmp_path, monkeypatch, dead_pid):
    frame = pd.DataFrame({"time.hour": [1.0, 2.0]}, index=pd.Index(["71", "72"], name="video_id"))
    entry = CacheEntry("time", {"table": "0" * 64})
    entry.table_path(tmp_path).parent.mkdir()
    left = _leftovers(entry.table_path(tmp_path), dead_pid)
    both_written = threading.Barrier(2, timeout=60)
    to_parquet = pd.DataFrame.to_parquet

    def write_then_wait(self, path, *args, **kwargs):  # both tables are written before either is renamed
        to_parquet(self, path, *args, **kwargs)
        both_written.wait()

    monkeypatch.setattr(pd.DataFrame, "to_parquet", write_then_wait)
    with ThreadPoolExecutor(2) as pool:
        written = list(pool.map(lambda _: write_cached(tmp_path, entry, frame, {}), range(2)))

    assert written == [entry.table_path(tmp_path)] * 2
    pd.testing.assert_frame_equal(read_cached(tmp_path, entry, frame.index), frame)
    names = {path.name for path in entry.table_path(tmp_path).parent.iterdir()}
    table, settings = entry.table_path(tmp_path).name, entry.settings_path(tmp_path).name
    assert names == {table, settings, left["live"], left["elsewhere"]}  # the killed writer's is gone
