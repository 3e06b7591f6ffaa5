"""`corpus replica serve`: the base URL on the first stdout line, serving until interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx

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
        assert server.wait(timeout=15) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_bad_fault_is_one_line_and_exit_1():
    result = subprocess.run([*CORPUS, "replica", "serve", "--fault", "nope=0.5"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "unknown replica fault 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_media_serves_metadata_without_making_any_file(tmp_path):
    cache = tmp_path / "cache"
    command = [*CORPUS, "replica", "serve", "--videos", "40", "--no-media"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "CORPUS_REPLICA_CACHE": str(cache)})
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
