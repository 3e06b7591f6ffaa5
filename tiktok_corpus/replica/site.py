"""The replica's routes: For You and video pages, the recommend / related / detail APIs, and the CDN.

Routes follow the TikTok web contract: the APIs answer with the site's envelopes and status codes and
check request signatures in the current signing mode (see :mod:`.signing`); the CDN (:mod:`.cdn`) enforces
the ``tt_chain_token`` cookie, signed expiring URLs and Range requests. Faults (see :mod:`.faults`) are
drawn per request.

Two clocks: ``clock`` (wall time) decides URL expiry and signature freshness; ``site_clock`` (which may
run fast) is read once per answer that carries items, for their counts and ``extra.now``.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
from pathlib import Path
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..clock import Clock
from ..errors import ConfigError
from .catalog import Catalog, CatalogVideo
from .cdn import Cdn
from .config import ReplicaConfig
from .faults import FaultPlan
from .items import (
    CAPTCHA_BODY,
    STATUS_INVALID,
    STATUS_MESSAGES,
    STATUS_NOT_FOUND,
    STATUS_OK,
    ItemRenderer,
    detail_envelope,
    list_envelope,
    status_envelope,
)
from .media_blocks import MediaUrls
from .pages import NOT_FOUND_PAGE, feed_page, video_page, waf_answer, waf_page
from .removals import Removals
from .signing import SigningKeys, SigningSetting, query_number

MAX_LIST_COUNT = 50


class ReplicaSite:
    """The request handlers and their state (sessions, issued tokens, WAF challenges, signing keys)."""

    def __init__(
        self,
        catalog: Catalog,
        media: dict[str, Path],
        plan: FaultPlan,
        signing: SigningSetting,
        removals: Removals,
        config: ReplicaConfig,
        clock: Clock,
        site_clock: Clock,
    ) -> None:
        self.catalog = catalog
        self.plan = plan
        self.signing = signing
        self.removals = removals
        self.keys = SigningKeys.draw()
        self.config = config
        self.clock = clock
        self.site_clock = site_clock
        self.sizes = {video_id: path.stat().st_size for video_id, path in media.items()}
        self._secret = secrets.token_bytes(16)
        self._tokens: set[str] = set()
        cdn = Cdn(media, plan, self._secret, self._tokens, clock, self._common_faults)
        self._sessions_seen: set[str | None] = set()
        self._waf_challenges: set[str] = set()
        self._feed_pool = list(catalog.videos)
        self._feed_pages: dict[str | None, int] = {}  # recommend calls served per session (ttwid)
        self.app = Starlette(
            routes=[
                Route("/", self.feed, methods=["GET"]),
                Route("/foryou", self.feed, methods=["GET"]),
                Route("/en/", self.feed, methods=["GET"]),
                Route("/@{user}/video/{video_id}", self.video_page, methods=["GET"]),
                Route("/@{user}/photo/{video_id}", self.video_page, methods=["GET"]),
                Route("/api/recommend/item_list/", self.recommend, methods=["GET"]),
                Route("/api/related/item_list/", self.related, methods=["GET"]),
                Route("/api/item/detail/", self.detail, methods=["GET"]),
                Route("/cdn/video/{video_id}.mp4", cdn.video, methods=["GET", "HEAD"]),
                Route("/aweme/v1/play/", cdn.play_api, methods=["GET", "HEAD"]),
                Route("/cdn/img/{name}", cdn.static, methods=["GET", "HEAD"]),
                Route("/cdn/music/{name}", cdn.static, methods=["GET", "HEAD"]),
                Route("/__replica__/signing", self.admin_signing, methods=["POST"]),
                Route("/__replica__/remove", self.admin_remove, methods=["POST"]),
            ]
        )

    # --- shared steps ----------------------------------------------------------------------

    async def _common_faults(self, route: str) -> Response | None:
        """Count the request; slow / 429 / 5xx apply to every route."""
        self.plan.count(route)
        if self.plan.fires("slow"):
            await asyncio.sleep(self.config.slow_seconds)
        if self.plan.fires("http_429"):
            return Response("Too Many Requests", status_code=429, headers={"Retry-After": "2"})
        if self.plan.fires("http_5xx"):
            status = self.plan.pick("http_5xx", [500, 502, 503, 504])
            return HTMLResponse(f"<html><body>{status}</body></html>", status_code=status)
        return None

    def _renderer(self, request: Request) -> ItemRenderer:
        """One answer's renderer: the site clock read once, URLs pointing back at the host the client used
        (so host-only cookies reach the CDN)."""
        base = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        return ItemRenderer(self.catalog, MediaUrls(base, self._secret), self.sizes, self.site_clock())

    def _expire(self, *, stale: bool = False) -> int:
        now = int(self.clock())
        return now - 3600 if stale else now + self.config.url_ttl_s

    def _set_session_cookies(self, request: Request, response: Response) -> None:
        if request.cookies.get("tt_chain_token") not in self._tokens:
            token = secrets.token_urlsafe(18)
            self._tokens.add(token)
            response.set_cookie("tt_chain_token", token, path="/", max_age=86400 * 30, samesite="lax")
        if not request.cookies.get("ttwid"):
            response.set_cookie("ttwid", f"1|{secrets.token_urlsafe(24)}", path="/", samesite="lax")
        response.set_cookie("msToken", secrets.token_urlsafe(32), path="/", samesite="lax")

    def _page(self, request: Request, html: str, status: int = 200) -> Response:
        response = HTMLResponse(html, status_code=status)
        self._set_session_cookies(request, response)
        return response

    def _waf_blocks(self, request: Request) -> Response | None:
        """The interstitial, unless this request carries the answer to an open challenge."""
        cookie = request.cookies.get("_wafchallengeid", "")
        challenge, _, answer = cookie.partition(".")
        if challenge in self._waf_challenges and answer == str(waf_answer(challenge)):
            self._waf_challenges.discard(challenge)
            return None
        if not self.plan.fires("waf"):
            return None
        challenge = secrets.token_hex(12)
        self._waf_challenges.add(challenge)
        return HTMLResponse(waf_page(challenge))

    def _unsigned(self, request: Request) -> Response | None:
        """The real site's answer to a forged call when the signature is missing, wrong or stale."""
        query = request.scope["query_string"].decode("latin-1")
        reason = self.keys.refusal(self.signing.mode, query, self.clock())
        if reason is None:
            return None
        self.plan.refuse(reason)
        return _empty_answer()

    def _api_blocks(self, request: Request) -> Response | None:
        """Bot detection on API calls: the empty first call of a session, empty bodies, captchas."""
        session = request.cookies.get("ttwid")
        first = session is None or session not in self._sessions_seen
        self._sessions_seen.add(session)
        if (first and self.plan.fires("empty_first")) or self.plan.fires("empty_body"):
            return _empty_answer()
        if self.plan.fires("captcha"):
            return JSONResponse(CAPTCHA_BODY)
        return None

    def _status_of(self, video: CatalogVideo | None) -> int:
        """The statusCode a post answers now: its removal's, or 10204 for every post under a region block."""
        return STATUS_NOT_FOUND if self.plan.fires("region_block") else self.removals.status(video)

    def _app_context(self) -> dict:
        return {
            "language": "en",
            "region": "US",
            "appId": 1233,
            "wid": str(secrets.randbits(62)),
            "abTestVersion": {"versionName": "replica"},
            "user": {},
            "webIdCreatedTime": str(int(self.clock())),
        }

    def _feed_page(self, session: str | None, count: int) -> list[CatalogVideo]:
        """A session's next For You batch: its n-th call answers the n-th batch of the seed's sequence, the
        same for every session, so a crawl's seeds do not depend on how its sessions' requests interleave."""
        page = self._feed_pages.get(session, 0)
        self._feed_pages[session] = page + 1
        rng = random.Random(f"{self.config.seed}:feed:{page}")
        size = rng.randint(max(1, math.ceil(count * 0.6)), count)
        return rng.sample(self._feed_pool, min(size, len(self._feed_pool)))

    def _envelope(self, request: Request, videos: list[CatalogVideo]) -> JSONResponse:
        renderer = self._renderer(request)
        expire = self._expire(stale=self.plan.fires("expired_urls"))
        items = [renderer.item(video, expire) for video in videos]
        now = renderer.site_time
        return JSONResponse(list_envelope(items, now_ms=int(now * 1000), logid=_logid(now)))

    @staticmethod
    def _count_param(request: Request, default: int) -> int | None:
        raw = request.query_params.get("count", str(default))
        count = query_number(raw, most_digits=6)
        return count if count is not None and 1 <= count <= MAX_LIST_COUNT else None

    # --- pages -----------------------------------------------------------------------------

    async def feed(self, request: Request) -> Response:
        blocked = await self._common_faults("feed_page") or self._waf_blocks(request)
        if blocked:
            return blocked
        modal = self.plan.fires("login_modal")
        return self._page(request, feed_page(self._app_context(), self.keys, self.clock(), login_modal=modal))

    async def video_page(self, request: Request) -> Response:
        blocked = await self._common_faults("video_page") or self._waf_blocks(request)
        if blocked:
            return blocked
        video_id = request.path_params["video_id"]
        if not video_id.isdigit():
            return self._page(request, NOT_FOUND_PAGE, status=404)
        if self.plan.fires("tls_failure"):
            return RedirectResponse(str(request.url.replace(scheme="https")), status_code=302)
        if self.plan.fires("no_rehydration"):
            return self._page(request, video_page(None, "TikTok", self.keys, self.clock()))
        video = self.catalog.by_id.get(video_id)
        status = self._status_of(video)
        detail: dict = {"statusCode": status, "statusMsg": STATUS_MESSAGES.get(status, "")}
        if video is not None and not status:
            renderer = self._renderer(request)
            detail = {
                "itemInfo": {"itemStruct": renderer.item(video, self._expire())},
                "shareMeta": renderer.share_meta(video),
                "statusCode": 0,
                "statusMsg": "",
            }
        scope = {
            "webapp.app-context": self._app_context(),
            "webapp.biz-context": {"os": "linux", "isMobile": False, "bizId": "tiktok_web"},
            "webapp.video-detail": detail,
        }
        title, modal = f"TikTok video {video_id}", self.plan.fires("login_modal")
        return self._page(request, video_page(scope, title, self.keys, self.clock(), login_modal=modal))

    # --- APIs ------------------------------------------------------------------------------

    async def recommend(self, request: Request) -> Response:
        blocked = await self._common_faults("recommend") or self._unsigned(request) or self._api_blocks(request)
        if blocked:
            return blocked
        count = self._count_param(request, 30)
        if count is None:
            return JSONResponse(status_envelope(STATUS_INVALID))
        if self.plan.fires("no_item_list"):
            return JSONResponse(status_envelope(STATUS_OK))
        videos = [] if self.plan.fires("empty_list") else self._feed_page(request.cookies.get("ttwid"), count)
        return self._envelope(request, videos)

    async def related(self, request: Request) -> Response:
        blocked = await self._common_faults("related") or self._unsigned(request) or self._api_blocks(request)
        if blocked:
            return blocked
        count = self._count_param(request, 16)
        video_id = request.query_params.get("itemID", "")
        if count is None or not video_id.isdigit():
            return JSONResponse(status_envelope(STATUS_INVALID))
        video = self.catalog.by_id.get(video_id)
        if video is None or self._status_of(video):
            return JSONResponse(status_envelope(STATUS_NOT_FOUND))
        if self.plan.fires("no_item_list"):
            return JSONResponse(status_envelope(STATUS_OK))
        return self._envelope(request, [self.catalog.by_id[i] for i in video.related[:count]])

    async def detail(self, request: Request) -> Response:
        blocked = await self._common_faults("detail") or self._unsigned(request) or self._api_blocks(request)
        if blocked:
            return blocked
        video_id = request.query_params.get("itemId", "")
        if not video_id.isdigit():
            return JSONResponse(status_envelope(STATUS_INVALID))
        video = self.catalog.by_id.get(video_id)
        status = self._status_of(video)
        if video is None or status:
            return JSONResponse(status_envelope(status))
        renderer = self._renderer(request)
        item, now = renderer.item(video, self._expire()), renderer.site_time
        return JSONResponse(
            detail_envelope(item, renderer.share_meta(video), now_ms=int(now * 1000), logid=_logid(now))
        )

    # --- admin ---------------------------------------------------------------------------

    async def admin_signing(self, request: Request) -> Response:
        """``POST /__replica__/signing`` with ``mode`` in the query or a form body: switch the signing mode."""
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        mode = request.query_params.get("mode") or form.get("mode", [""])[0]
        try:
            self.signing.set(mode)
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"signing": mode})

    async def admin_remove(self, request: Request) -> Response:
        """``POST /__replica__/remove`` with ``id`` (and ``status``, 10204 by default) in the query or a form
        body: the post's page and detail API answer that statusCode from now on."""
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        video_id = request.query_params.get("id") or form.get("id", [""])[0]
        status = request.query_params.get("status") or form.get("status", [str(STATUS_NOT_FOUND)])[0]
        try:
            if not (status.isascii() and status.isdigit()):
                raise ConfigError(f"status must be a statusCode, not {status!r}")
            self.removals.remove(video_id, int(status))
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"removed": video_id, "statusCode": int(status)})


def _logid(now: float) -> str:
    return f"{int(now)}{secrets.token_hex(8).upper()}"


def _empty_answer() -> Response:
    """HTTP 200, 0 bytes, ``tt_orcas_res: 1``: how the site answers calls it will not serve."""
    return Response(b"", media_type="application/json", headers={"tt_orcas_res": "1"})
