"""A logged-out Chromium session whose data comes from JSON fetched inside the site's own pages.

The real site answers requests whose signature it does not like with empty bodies, so every answer is
fetched from within the site's pages: responses the For You page requests while it loads and scrolls,
the related list a video page requests on load (:meth:`WorkerSession.video_page_list`, signed by the
page's own scripts whatever the algorithm), or ``fetch()`` run inside the open page, plain or signed
with the page's ``frontierSign`` (:meth:`WorkerSession.fetch_text`). Which of these gets related lists
is decided in :mod:`.related_lists`. Nothing here reads the DOM for data.

Blocks are expected: a WAF interstitial (a real browser solves it and reloads), empty bodies, captcha
answers, login walls. Each try goes through one tenacity policy (exponential backoff with jitter, an
explicit stop); a worker recycles its browser context after repeated blocks and every
``recycle_every`` requests (memory stays bounded on long runs), and a :class:`BlockMonitor` shared by
all workers raises :class:`PersistentlyBlocked` when nothing but blocks comes back.

The browser itself is the caller's to give (:func:`stage_browser`): one shared by several stages, a
remote one; without one, a stage launches Chromium as the settings say and closes it when done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from playwright.async_api import Browser, BrowserContext, Page, Playwright, ProxySettings, Response, async_playwright
from playwright.async_api import Error as PlaywrightError
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential_jitter

from ..config import Settings
from ..errors import BlockedError, ConfigError, ContractError
from .blocks import (
    UNANSWERED_KINDS,
    BlockMonitor,
    BlockPolicy,
    Pacer,
    http_status_error,
    is_retryable,
    tries_over,
    unanswered_is_unreachable,
)
from .browser_failures import browser_failure
from .contract import (
    LOGIN_MODAL_CLOSE,
    detect_block,
    is_login_wall,
    redact_url,
    related_list_item_id,
)
from .feed import FORYOU_PATH, RECOMMEND_PATH, ForYouFeed
from .session_export import SessionExport
from .video_pages import VideoPages

log = logging.getLogger(__name__)
T = TypeVar("T")

# A browser a stage opens and leaves again: e.g. an asynccontextmanager that yields
# ``playwright.chromium.connect_over_cdp(url)`` and closes that connection.
BrowserOpener = Callable[[], contextlib.AbstractAsyncContextManager[Browser]]
# What a stage runs its browser workers on (see :func:`stage_browser`).
BrowserSource = Browser | BrowserOpener

# Runs inside the page, with the page's cookies. Signed, it appends the X-Bogus of the page's own
# frontierSign (as TikTok-Api does); a page whose frontierSign is gone, throws or gives no X-Bogus (the site
# changed it) answers {unsigned: true}, so the slower methods get their turn.
_FETCH_JS = """async ([url, sign]) => {
  if (sign) {
    let bogus = null;
    try {
      const signed = window.byted_acrawler.frontierSign(url);
      bogus = signed && signed["X-Bogus"];
    } catch (changed) {
      bogus = null;
    }
    if (typeof bogus !== "string" || !bogus) return {unsigned: true};
    url += (url.includes("?") ? "&" : "?") + "X-Bogus=" + encodeURIComponent(bogus);
  }
  const r = await fetch(url, {credentials: "include"});
  return {status: r.status, body: await r.text()};
}"""


def browser_user_agent(raw: str) -> str:
    """The browser's own user agent without the "Headless" marker sites key on."""
    return raw.replace("HeadlessChrome", "Chrome")


async def launch_browser(playwright: Playwright, settings: Settings, *, headful: bool = False) -> Browser:
    """Chromium as configured: the resolved executable, headless unless asked, through the proxy. One
    that cannot start (a wrong path, no display for ``--headful``) is a :class:`ConfigError` naming it."""
    proxy: ProxySettings | None = {"server": settings.proxy} if settings.proxy else None
    executable = settings.resolved_browser_path()
    try:
        return await playwright.chromium.launch(executable_path=executable, headless=not headful, proxy=proxy)
    except PlaywrightError as exc:
        said = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        which = executable or "Playwright's own browser"
        raise ConfigError(
            f"Chromium could not start ({which}): {said}. "
            "Set CORPUS_BROWSER_PATH to a Chromium executable, or run scripts/setup.sh"
        ) from exc


@contextlib.asynccontextmanager
async def launched_browser(settings: Settings, *, headful: bool = False) -> AsyncIterator[Browser]:
    """:func:`launch_browser` in a Playwright of its own; the browser is closed, and Playwright
    stopped, on the way out. Several stages may run on one: pass the browser to each."""
    async with async_playwright() as playwright:
        browser = await launch_browser(playwright, settings, headful=headful)
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def stage_browser(
    source: BrowserSource | None, settings: Settings, *, headful: bool = False
) -> AsyncIterator[Browser]:
    """The browser a stage runs on. A :class:`Browser` is the caller's: used, and left open (the contexts
    the stage opened in it are its own to close). An opener is entered and left by the stage, so what
    leaving does (close a launch, drop a connection) is the opener's. None: :func:`launched_browser`
    as the settings and ``headful`` say; a given browser was launched as its owner chose."""
    if isinstance(source, Browser):
        yield source
        return
    opener = source or (lambda: launched_browser(settings, headful=headful))
    async with opener() as browser:
        yield browser


class WorkerSession(ForYouFeed, VideoPages, SessionExport):
    """One worker's browser context and open page, recycled as blocks and page counts require.

    Several requests may run at once (the crawler keeps a few in flight): ``fetch_text`` calls share
    the open page, and each ``video_page_list`` navigation takes a page of its own from a small pool
    opened on demand. Their starts still keep the worker's delay, and a context renewal waits for the
    ones in flight to land before it closes their pages.
    """

    def __init__(
        self,
        browser: Browser,
        base_url: str,
        *,
        policy: BlockPolicy,
        monitor: BlockMonitor,
        pacer: Pacer,
        user_agent: str | None = None,
        name: str = "w0",
    ) -> None:
        self.browser = browser
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.monitor = monitor
        self.pacer = pacer
        self.user_agent = user_agent
        self.name = name
        self.context: BrowserContext | None = None
        self.page: Page | None = None
        self.contexts_opened = 0  # a new context may be signed differently: related_lists re-probes on change
        self.requests_in_context = 0
        self.recycles = 0
        self._consecutive_blocks = 0
        self._ready_at = 0.0
        self._recommend_queue: asyncio.Queue[tuple[int, str]] | None = None
        self._document_status: dict[Page, int] = {}  # of the document each page shows now
        self._list_answers: dict[str, asyncio.Future[Response]] = {}  # video id -> its page's related list
        self._spare_pages: list[Page] = []  # video pages free for the next navigation
        self._feed_answered = asyncio.Event()
        self._watchers = 0  # of the context's responses: see _watching_responses
        self._pacing = asyncio.Lock()  # one delay between this worker's request starts
        self._renewing = asyncio.Lock()  # one context renewal at a time
        self._page_free = asyncio.Event()  # cleared while a renewal swaps the page
        self._page_free.set()
        self._in_flight = 0
        self._idle = asyncio.Event()  # set when no request is running in the context
        self._idle.set()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open a fresh context on the For You page and warm it up; retried like any request. A page that
        got no answer in any try is an unreachable site: :class:`~tiktok_corpus.errors.SiteUnreachable`."""
        with unanswered_is_unreachable("the first page load"):
            await self.with_retries(self._open_fresh_context, "start")

    async def close(self) -> None:
        if self.context is not None:
            context, self.context, self.page = self.context, None, None
            try:
                await context.close()
            except PlaywrightError:  # the browser may already be gone at shutdown
                pass

    async def recycle(self) -> None:
        """A new context (new cookies, new device) on a fresh page."""
        self.recycles += 1
        log.info(
            "%s: recycling browser context (%d requests, %d consecutive blocks)",
            self.name,
            self.requests_in_context,
            self._consecutive_blocks,
        )
        await self._open_fresh_context()

    def _recycle_due(self) -> bool:
        return (
            self.requests_in_context >= self.policy.recycle_every
            or self._consecutive_blocks >= self.policy.recycle_after_blocks
        )

    async def _renew_context(self, needed: Callable[[], bool]) -> None:
        """Open (or recycle into) a fresh context once, however many of this worker's requests ask."""
        async with self._renewing:
            if not needed():  # another request of this worker has just renewed it
                return
            self._page_free.clear()
            try:
                await self._idle.wait()
                await (self._open_fresh_context() if self.page is None else self.recycle())
            finally:
                self._page_free.set()

    async def _open_fresh_context(self) -> None:
        await self.close()
        self.context = await self.browser.new_context(
            user_agent=self.user_agent, locale="en-US", viewport={"width": 1280, "height": 900}
        )
        self.context.set_default_timeout(self.policy.page_timeout_s * 1000)
        if self._watchers:  # a watch begun before this renewal goes on in the new context
            self.context.on("response", self._on_response)
        self.contexts_opened += 1
        self._document_status, self._spare_pages = {}, []
        self.page = await self.context.new_page()
        self.requests_in_context = 0
        self._consecutive_blocks = 0
        self._feed_answered = asyncio.Event()
        with self._watching_responses():
            await self._goto(self.base_url + FORYOU_PATH)
            # Warm-up: a fresh session's first signed call is often empty. Let the page make it (and
            # scroll a little) before any failure counts against the crawl.
            try:
                await asyncio.wait_for(self._feed_answered.wait(), self.policy.warmup_wait_s)
            except TimeoutError:
                pass  # a feed that never calls its API still had its time to settle
        await self.scroll()

    @contextlib.contextmanager
    def _watching_responses(self) -> Iterator[None]:
        """Have the context's responses (every page's) reach :meth:`_on_response` for the time being.

        Playwright sends each response to Python only while a listener is on, and builds its request
        and response objects there: a cost on every in-page ``fetch()``, which needs no listener. So the
        listener is on only while something waits for a response (a document's status, the feed's
        batches, a video page's related list); watches nest, and a renewal carries them over.
        """
        if not self._watchers and self.context is not None:
            self.context.on("response", self._on_response)
        self._watchers += 1
        try:
            yield
        finally:
            self._watchers -= 1
            if not self._watchers and self.context is not None:
                self.context.remove_listener("response", self._on_response)

    async def _goto(self, url: str) -> None:
        """Navigate the open page, paced and counted (the feed page's loads); a block page is refused.

        The feed's data comes from the responses its page requests, so its HTML is read only for block
        markers; a video page is judged by its embedded data instead (:func:`parse_video_page`)."""
        assert self.page is not None
        self._ready_at = await self.pacer.wait(self._ready_at)
        self.requests_in_context += 1
        html = await self._navigate(self.page, url)
        if block := detect_block(html):
            raise BlockedError(f"{redact_url(url)} is a {block} page", kind=block)

    async def _navigate(self, page: Page, url: str) -> str:
        """Load ``url`` in ``page`` and wait out a WAF interstitial; the HTML. HTTP errors, a redirect to
        the login page and an empty page raise; what the HTML holds is for the caller to judge."""
        with self._watching_responses():  # the status of the document shown, after any WAF reload
            await page.goto(url, wait_until="domcontentloaded")
            html = await self._content_after_waf(page)
        if error := http_status_error(
            self._document_status.get(page, 0), url
        ):  # of the page shown now, after any reload
            raise error
        if is_login_wall(page.url):
            raise BlockedError(f"{redact_url(url)} redirected to the login page", kind="login")
        if not html.strip():
            raise BlockedError(f"{redact_url(url)} came back empty", kind="empty_body")
        return html

    async def _content_after_waf(self, page: Page) -> str:
        """The page's HTML once a WAF interstitial has solved itself and reloaded (or the wait ran out)."""
        deadline = time.monotonic() + self.policy.waf_wait_s
        html = ""
        while time.monotonic() < deadline:
            try:
                html = await page.content()
            except PlaywrightError:  # navigating right now (the challenge reloads the page)
                await asyncio.sleep(0.1)
                continue
            if detect_block(html) != "waf":
                break
            await asyncio.sleep(0.2)
        return html

    async def scroll(self) -> None:
        """What a person does to get more of the feed: the page then fetches another batch. A login
        modal over the feed is closed first, as a guest does: the feed does not scroll under it."""
        assert self.page is not None
        close = self.page.locator(LOGIN_MODAL_CLOSE)
        if await close.count():
            await close.first.click()
        await self.page.mouse.wheel(0, 1600)
        await self.page.keyboard.press("ArrowDown")

    # --- retries ---------------------------------------------------------------------------------

    async def with_retries(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """Run ``operation`` under the block policy; blocked tries count and may recycle the context. A try
        that got no answer at all is retried only ``policy.unanswered_attempts`` times, each retry said in
        a warning: a site that is down, or a wrong ``--base-url``, shows at once, not after minutes."""
        policy = self.policy

        async def before_sleep(state) -> None:
            exc = state.outcome.exception()
            kind = getattr(exc, "kind", "?")
            if kind in UNANSWERED_KINDS:  # said out loud: an outage or a wrong --base-url is no silent wait
                log.warning(
                    "%s: %s got no answer (%s); retrying in %.1fs (try %d of at most %d)",
                    self.name,
                    what,
                    exc,
                    state.next_action.sleep,
                    state.attempt_number + 1,
                    policy.unanswered_attempts,
                )
            else:
                log.info("%s: %s failed (%s: %s); retrying", self.name, what, kind, exc)
            if isinstance(exc, BlockedError):
                self._consecutive_blocks += 1

        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=tries_over(policy),
            wait=wait_exponential_jitter(multiplier=policy.backoff_initial_s, max=policy.backoff_max_s),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    if self.page is not None and self._recycle_due():
                        await self._renew_context(self._recycle_due)  # in the try: a failing start is retried
                    result = await operation()
                except BlockedError as exc:
                    self.monitor.record_block(exc.kind)
                    raise
                except PlaywrightError as exc:  # no answer, timeouts, crashed pages: transient
                    raise browser_failure(exc) from None
                self.monitor.record_success()
                self._consecutive_blocks = 0
                return result
        raise AssertionError("unreachable: tenacity reraises the last error")

    # --- data ----------------------------------------------------------------------------------

    async def _in_context(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """One request of this worker: paced, counted, bounded by the page timeout, and never cut short
        by a context renewal (a renewal waits for the requests in flight to land)."""
        if self.page is None:
            await self._renew_context(lambda: self.page is None)
        while not self._page_free.is_set():  # checked again on waking: a renewal may start meanwhile
            await self._page_free.wait()
        self._in_flight += 1  # from here a renewal waits for this request
        self._idle.clear()
        try:
            async with self._pacing:
                self._ready_at = await self.pacer.wait(self._ready_at)
            self.requests_in_context += 1
            return await asyncio.wait_for(operation(), self.policy.page_timeout_s)
        except TimeoutError:
            raise ContractError(
                f"no answer from {redact_url(what)} in {self.policy.page_timeout_s:.0f}s", kind="timeout"
            ) from None
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def fetch_text(self, path: str, *, signed: bool = False) -> str:
        """``fetch(path)`` inside the open page, with the X-Bogus of the page's ``frontierSign`` appended
        when ``signed``; the body of a 2xx answer. A page without a ``frontierSign`` that gives one (none,
        or one the site changed) refuses to sign (:class:`BlockedError` ``no_signer``)."""

        def run() -> Awaitable[dict[str, Any]]:
            assert self.page is not None
            return self.page.evaluate(_FETCH_JS, [path, signed])

        answer = await self._in_context(run, path)
        if answer.get("unsigned"):
            raise BlockedError("the page has no frontierSign that gives an X-Bogus to sign with", kind="no_signer")
        if error := http_status_error(int(answer["status"]), path):
            raise error
        return str(answer["body"])

    def _on_response(self, response: Response) -> None:
        if response.request.is_navigation_request() and (frame := response.frame) == frame.page.main_frame:
            self._document_status[frame.page] = response.status
        if RECOMMEND_PATH in response.url:
            self._feed_answered.set()
            if self._recommend_queue is not None:
                asyncio.ensure_future(self._capture(response, self._recommend_queue))
        elif self._list_answers and (item_id := related_list_item_id(response.url)) is not None:
            answer = self._list_answers.get(item_id)
            if answer is not None and not answer.done():
                answer.set_result(response)


async def default_user_agent(browser: Browser) -> str:
    """The launched browser's user agent, minus the headless marker."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        return browser_user_agent(await page.evaluate("navigator.userAgent"))
    finally:
        await context.close()


__all__ = [
    "BlockMonitor",
    "BlockPolicy",
    "BrowserOpener",
    "BrowserSource",
    "Pacer",
    "WorkerSession",
    "browser_user_agent",
    "default_user_agent",
    "launch_browser",
    "launched_browser",
    "stage_browser",
]
