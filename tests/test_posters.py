"""Poster frames made by the real ffmpeg, and made at once by several threads, as ``corpus browse``'s
request threads do when two pages ask for the same poster."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tiktok_corpus import posters
from tiktok_corpus._files import sha256_file
from tiktok_corpus.errors import MediaError
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


def test_a_folder_whose_name_holds_a_frame_number_pattern_gets_its_posters(tmp_path):
    """ffmpeg's image writer read "%d" in the output's path as a frame number, could not open the file
    it made of it, and the poster was marked as never to be made."""
    video = encode_lavfi(tmp_path / "v.mp4", "testsrc2=size=128x96:rate=10:duration=1", preset="ultrafast")
    cache = tmp_path / "corpus 100%d" / "posters"

    made = poster_frame(video, cache)

    assert made.parent == cache and made.read_bytes()[:2] == b"\xff\xd8"
    assert [p.name for p in cache.iterdir()] == [made.name]  # no .failed marker, no temporary file


def test_a_file_that_gives_no_poster_is_not_decoded_again_unless_it_timed_out(tmp_path, monkeypatch):
    """An undecodable file re-ran ffmpeg on every view of its grid page and every start of the background
    job; a timeout (a busy machine) is tried again."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"<html>Access Denied</html>" * 40)
    sha = sha256_file(broken)[1]
    runs = []
    extract = posters.run_tool
    monkeypatch.setattr(posters, "run_tool", lambda *a, **k: (runs.append(a), extract(*a, **k))[1])

    for _ in range(3):
        with pytest.raises(MediaError) as failed:
            poster_frame(broken, tmp_path / "posters", sha256=sha)
        assert failed.value.kind in ("corrupt", "unreadable") and "broken.mp4" in failed.value.message
    assert len(runs) == 1

    busy = encode_lavfi(tmp_path / "busy.mp4", "testsrc2=size=128x96:rate=10:duration=1", preset="ultrafast")

    def too_slow(*args, **kwargs):
        runs.append(args)
        raise MediaError("extract a poster frame: ffmpeg took longer than 60s", kind="timeout")

    monkeypatch.setattr(posters, "run_tool", too_slow)
    with pytest.raises(MediaError, match="took longer"):
        poster_frame(busy, tmp_path / "posters")
    monkeypatch.setattr(posters, "run_tool", extract)
    assert poster_frame(busy, tmp_path / "posters").is_file() and len(runs) == 2


def test_a_poster_cut_short_by_ctrl_c_is_made_on_the_next_view(tmp_path, monkeypatch):
    """Ctrl-C reaches the ffmpeg children too (the terminal signals the whole process group); ffmpeg then
    exits 255 with nothing on stderr, which read as "unreadable" wrote the file's ``.failed``: a good
    video had no poster for good, on every later start."""
    video = encode_lavfi(tmp_path / "good.mp4", "testsrc2=size=128x96:rate=10:duration=1", preset="ultrafast")
    extract = posters.run_tool

    def interrupted(*args, **kwargs):
        return extract(*args, **kwargs, started=lambda process: process.send_signal(signal.SIGINT))

    monkeypatch.setattr(posters, "run_tool", interrupted)
    with pytest.raises(MediaError) as stopped:
        poster_frame(video, tmp_path / "posters")
    assert stopped.value.kind == "interrupted" and "stopped by a signal" in stopped.value.message
    assert not list((tmp_path / "posters").glob("*.failed"))
    monkeypatch.setattr(posters, "run_tool", extract)
    assert poster_frame(video, tmp_path / "posters").is_file()


@pytest.mark.parametrize(
    "signal_name, kind",
    [("INT", "interrupted"), ("TERM", "interrupted"), ("SEGV", "unreadable"), ("ABRT", "unreadable")],
)
def test_a_tool_stopped_from_outside_is_interrupted_and_a_crash_is_the_files(signal_name, kind):
    """Ctrl-C or a kill says nothing of the file; a crash (a segfault, an abort) may be its doing, and was
    read as "interrupted" too: a file that crashes ffmpeg would have been retried on every run."""
    with pytest.raises(MediaError) as stopped:
        posters.run_tool(["sh", "-c", f"kill -{signal_name} $$"], timeout=30, what="stop")
    assert stopped.value.kind == kind
