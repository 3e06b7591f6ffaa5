"""The replica's CDN: signed, expiring video URLs behind the ``tt_chain_token`` cookie, Range requests and
the media faults; the ``/aweme/v1/play/`` URL's tiny non-video bodies; static images and music."""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..clock import Clock
from .faults import FaultPlan
from .media_blocks import MediaUrls
from .pages import ACCESS_DENIED, CDN_ERROR_PAGE, NOT_FOUND_PAGE
from .signing import query_number

TINY_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
PLAY_API_BODY = b'{"status_code":0,"status_msg":"","aweme_id":"","data":{}}' + b" " * 312
RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})$")  # longer numbers: no range it can satisfy, ignored


class ConnectionCut(Exception):
    """Raised mid-body to make uvicorn drop the connection (the `truncated` fault)."""


class _TruncatedResponse(Response):
    """Promises the whole body in Content-Length, sends half of it, then drops the connection."""

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        raise ConnectionCut


class Cdn:
    """The CDN routes and their state. ``tokens`` is the set of ``tt_chain_token`` values the pages issued
    (shared with the site, which adds to it); ``common_faults(route)`` counts a request and applies the
    faults every route has (slow, 429, 5xx)."""

    def __init__(
        self,
        media: dict[str, Path],
        plan: FaultPlan,
        secret: bytes,
        tokens: set[str],
        clock: Clock,
        common_faults: Callable[[str], Awaitable[Response | None]],
    ) -> None:
        self.media = media
        self.plan = plan
        self.clock = clock
        self._secret = secret
        self._tokens = tokens
        self._common_faults = common_faults
        self._bodies: dict[str, bytes] = {}

    async def video(self, request: Request) -> Response:
        blocked = await self._common_faults("cdn")
        if blocked:
            return blocked
        video_id = request.path_params["video_id"]
        if video_id not in self.media:
            return HTMLResponse(NOT_FOUND_PAGE, status_code=404)
        expire = query_number(request.query_params.get("expire", ""))
        signature = request.query_params.get("signature", "")
        urls = MediaUrls("", self._secret)
        if (
            expire is None
            or signature != urls.signature(video_id, expire)
            or expire < self.clock()
            or request.cookies.get("tt_chain_token") not in self._tokens
        ):
            return HTMLResponse(ACCESS_DENIED, status_code=403)
        if self.plan.fires("cdn_html"):
            return HTMLResponse(CDN_ERROR_PAGE)
        if self.plan.fires("zero_byte"):
            return Response(b"", media_type="video/mp4")
        body = self._body(video_id)
        if self.plan.fires("corrupt_media"):
            body = _corrupted(body, self.plan.pick("corrupt_media", range(1 << 30)))
        status, headers = 200, {"Accept-Ranges": "bytes"}
        wanted = RANGE.match(request.headers.get("range", "").strip())
        if wanted and not _backwards(wanted):  # a backwards range is invalid (RFC 9110): ignored, all served
            start, end = _byte_range(wanted, len(body))
            if start is None:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{len(body)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            status, body = 206, body[start : end + 1]
        response_type = _TruncatedResponse if self.plan.fires("truncated") else Response
        return response_type(body, status_code=status, media_type="video/mp4", headers=headers)

    async def play_api(self, request: Request) -> Response:
        """Like ``www.tiktok.com/aweme/v1/play/``: 200, but a tiny non-video body."""
        blocked = await self._common_faults("play_api")
        return blocked or Response(PLAY_API_BODY, media_type="application/json")

    async def static(self, request: Request) -> Response:
        self.plan.count("static")
        return Response(TINY_GIF, media_type="image/gif")

    def _body(self, video_id: str) -> bytes:
        if video_id not in self._bodies:
            self._bodies[video_id] = self.media[video_id].read_bytes()
        return self._bodies[video_id]


def _backwards(match: re.Match) -> bool:
    first, last = match.group(1), match.group(2)
    return bool(first and last) and int(last) < int(first)


def _byte_range(match: re.Match, size: int) -> tuple[int | None, int]:
    """``bytes=N-``, ``bytes=N-M`` or ``bytes=-K`` as inclusive (start, end); start None if unsatisfiable."""
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None, 0
    if not first:
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end and start < size else (None, 0)


def _corrupted(body: bytes, salt: int) -> bytes:
    """The ftyp box kept, garbage after it: passes header and size checks, fails ffprobe."""
    header = int.from_bytes(body[:4], "big") if len(body) >= 8 else 0
    garbage = random.Random(salt).randbytes(len(body) - header)
    return body[:header] + garbage
