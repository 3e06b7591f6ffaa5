"""The background uvicorn server shared by ``corpus browse`` and the replica (``tiktok_corpus._serving``)."""

from __future__ import annotations

import logging
import socket

from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route

from tiktok_corpus._serving import BackgroundServer


def test_a_stop_that_cuts_a_stream_short_logs_no_traceback(tmp_path, caplog):
    """A video still streaming at Ctrl-C outlasts the grace period and is cancelled: that is the stop
    asked for, so nothing is logged with an exception (the user saw a CancelledError traceback)."""
    big = tmp_path / "big.bin"
    with big.open("wb") as file:
        file.truncate(1 << 30)  # sparse: far more than the socket buffers take, so the response cannot finish
    app = Starlette(routes=[Route("/big", lambda request: FileResponse(big))])
    server = BackgroundServer(app, "127.0.0.1", 0, name="test-server", graceful_shutdown_s=0)
    host, port = server.start().removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as reader, caplog.at_level(logging.INFO):
        reader.sendall(b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert reader.recv(64).startswith(b"HTTP/1.1 200 ")  # streaming now; the client reads no further
        server.stop()
    assert not server.running
    assert any("graceful shutdown" in record.getMessage() for record in caplog.records)  # it was cut short
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []
