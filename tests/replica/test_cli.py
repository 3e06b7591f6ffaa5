"""`corpus replica serve`: the base URL on the first stdout line, serving until interrupted.

Ctrl-C is tested where it used to hang: while ffmpeg makes the media, and with a response in flight.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import httpx

from tests.waiting import wait_for
from tiktok_corpus.replica.catalog import build_catalog
from tiktok_corpus.tiktok.contract import parse_item, recommend_api_path

CORPUS = [sys.executable, "-c", "from tiktok_corpus.cli import app; app()"]


def test_serve_prints_base_url_then_serves_until_ctrl_c():
    command = [*CORPUS, "replica", "serve", "--videos", "30", "--seed", "0", "--fault", "empty_body=1"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base_url, timeout=10) as http:
            assert http.get("/foryou").status_code == 200
            assert http.get("/api/recommend/item_list/").content == b""  # the --fault took effect
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_bad_fault_is_one_line_and_exit_1():
    result = subprocess.run(
        [*CORPUS, "replica", "serve", "--fault", "nope=0.5"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "unknown replica fault 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_signing_flag_sets_the_mode_and_an_unknown_one_is_one_line():
    command = [*CORPUS, "replica", "serve", "--videos", "30", "--no-media", "--signing", "xbogus"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        with httpx.Client(base_url=base_url, timeout=10) as http:
            http.get("/foryou")
            unsigned = http.get(recommend_api_path(16))
            assert unsigned.status_code == 200 and unsigned.content == b"" and unsigned.headers["tt_orcas_res"] == "1"
            assert http.post("/__replica__/signing", params={"mode": "none"}).json() == {"signing": "none"}
            assert http.get(recommend_api_path(16)).json()["itemList"]
    finally:
        server.kill()
        server.wait()
    result = subprocess.run(
        [*CORPUS, "replica", "serve", "--no-media", "--signing", "sometimes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "unknown signing mode 'sometimes'" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_media_serves_metadata_without_making_any_file(tmp_path):
    cache = tmp_path / "cache"
    command = [*CORPUS, "replica", "serve", "--videos", "40", "--no-media"]
    server = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CORPUS_REPLICA_CACHE": str(cache)},
    )
    try:
        base_url = server.stdout.readline().strip()
        with httpx.Client(base_url=base_url, timeout=10) as http:
            http.get("/foryou")  # the session cookie the CDN asks for
            items = http.get(recommend_api_path(30)).json()["itemList"]
            urls = [u.url for item in items for u in parse_item(item).media_urls if u.kind != "aweme_play"]
            assert urls, "items still list their CDN URLs"
            assert {http.get(url).status_code for url in urls[:5]} == {404}
        assert not cache.exists() or not any(cache.iterdir()), "no media file was made"
    finally:
        server.kill()
        server.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_while_ffmpeg_makes_the_media_kills_it_and_exits(tmp_path):
    """The stand-in ffmpeg never finishes: only killing it lets the server exit before the 300 s timeout."""
    cache, bin_dir, pids = tmp_path / "cache", tmp_path / "bin", tmp_path / "pids"
    for folder in (cache / "loops", bin_dir, pids):
        folder.mkdir(parents=True)
    for hz in {v.media.audio_hz for v in build_catalog(40, 0).playable() if v.media.has_audio}:
        (cache / "loops" / f"audio-{hz}.m4a").touch()  # the loops exist: every ffmpeg run is a batch's
    fake = bin_dir / "ffmpeg"
    fake.write_text(f'#!/bin/sh\necho started > "{pids}/$$"\nexec sleep 600\n')
    fake.chmod(0o755)
    env = {**os.environ, "CORPUS_REPLICA_CACHE": str(cache), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(
        [*CORPUS, "replica", "serve", "--videos", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_for(lambda: any(pids.iterdir()), "an ffmpeg run started", server)
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 130, server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    started = [int(path.name) for path in pids.iterdir()]
    assert not [pid for pid in started if _alive(pid)], "an ffmpeg outlived the server"
    assert not list(cache.glob("*.mp4")) and not list(cache.glob("*.part")) and not list(cache.glob("segments-*"))
    said = server.stderr.read()
    assert "Traceback" not in said and "interrupted: the media files finished so far are cached" in said


def test_ctrl_c_with_a_slow_response_in_flight_lets_it_finish_then_exits():
    """Graceful shutdown: the response being served when Ctrl-C lands still arrives whole."""
    command = [*CORPUS, "replica", "serve", "--videos", "40", "--no-media", "--fault", "slow=1"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        host, port = base_url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)), timeout=30)
        slow.sendall(b"GET /foryou HTTP/1.1\r\nHost: replica\r\nConnection: close\r\n\r\n")
        # The static route skips the slow fault. Its answer, asked for after the slow request was sent,
        # means the server read that request first: it is in flight now.
        with httpx.Client(base_url=base_url, timeout=30) as http:
            assert http.get("/cdn/img/pixel.gif").status_code == 200
        answer = {}
        reader = threading.Thread(target=lambda: answer.update(raw=_read_all(slow)))
        reader.start()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0, server.stderr.read()
        reader.join(timeout=30)
        assert answer["raw"].startswith(b"HTTP/1.1 200 ")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_sigterm_stops_the_server_as_ctrl_c_does():
    """``docker stop`` sends SIGTERM: unhandled, it killed every command on the spot (claims and ``.part``
    files left as after kill -9); it now takes the Ctrl-C path, which for a server is a clean exit."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tiktok_corpus", "replica", "serve", "--videos", "40", "--no-media"],  # as `corpus`
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().startswith("http://")  # serving
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert "Traceback" not in server.stderr.read()


def _read_all(sock: socket.socket) -> bytes:
    with sock:
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)
