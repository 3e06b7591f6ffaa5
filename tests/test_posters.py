"""Poster frames made by the real ffmpeg, and made at once by several threads, as ``corpus browse``'s
request threads do when two pages ask for the same poster."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tiktok_corpus import posters
from tiktok_corpus._files import sha256_file
from tiktok_corpus.posters import poster_frame

from .media_files import encode_lavfi

THREADS = 6


def test_threads_asking_for_the_same_poster_all_get_it(tmp_path, monkeypatch):
    video = encode_lavfi(tmp_path / "v.mp4", "testsrc2=size=128x96:rate=10:duration=1", preset="ultrafast")
    sha = sha256_file(video)[1]
    # Every thread's ffmpeg finishes before any thread moves its file into place: the overlap two
    # requests for one poster have when they arrive together.
    all_extracted = threading.Barrier(THREADS, timeout=60)
    extract = posters.run_tool

    def extract_then_wait(*args, **kwargs):
        extract(*args, **kwargs)
        all_extracted.wait()

    monkeypatch.setattr(posters, "run_tool", extract_then_wait)
    with ThreadPoolExecutor(THREADS) as pool:
        made = list(pool.map(lambda _: poster_frame(video, tmp_path / "posters", sha256=sha), range(THREADS)))

    assert made == [tmp_path / "posters" / f"{sha}.jpg"] * THREADS
    assert made[0].read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    assert [p.name for p in (tmp_path / "posters").iterdir()] == [f"{sha}.jpg"]  # no temporary file left
