"""The replica's HTML: For You page, video page, WAF interstitial and CDN error bodies.

The pages' own JS calls the APIs with ``fetch()`` and signs those calls itself, like TikTok's SDK:
every call carries ``X-Bogus`` and ``ts`` + ``X-Gnarly`` whatever the replica's signing mode, so a
crawler that captures the page's responses works here as on the site. Each page script is one closure
that holds this start's keys (rendered at request time): it exposes ``window.byted_acrawler.frontierSign``
but keeps the X-Gnarly function to itself.
"""

from __future__ import annotations

import json

from .signing import SIGNING_JS, SigningKeys

WAF_MODULUS = 9973

# Runs inside the page's closure, after SIGNING (keys, the replica's clock at render time) and SIGNING_JS.
# `ts` follows the replica's clock, not the browser's, so a replica on an injected clock accepts its pages.
_SDK_SCRIPT = """
const startedAt = Date.now();
const xBogus = (text) => keyedHash(SIGNING.xbogus, text);
const xGnarly = (text) => keyedHash(SIGNING.gnarly, text);
window.byted_acrawler = {frontierSign: (url) => ({'X-Bogus': xBogus(signedText(url))})};
function signedUrl(path, params) {
  const base = path + '?' + params;
  const ts = 'ts=' + (SIGNING.now + Math.floor((Date.now() - startedAt) / 1000));
  const text = signedText(base + '&' + ts);
  return base + '&X-Bogus=' + xBogus(text) + '&' + ts + '&X-Gnarly=' + xGnarly(text);
}
"""

_FEED_SCRIPT = """
(() => {
  const feed = document.getElementById('column-list-container');
  let loading = false;
  const token = () => Math.random().toString(36).slice(2);
  async function loadMore() {
    if (loading) return;
    loading = true;
    try {
      const params = new URLSearchParams({aid: '1988', app_language: 'en', count: '16',
        from_page: 'fyp', device_platform: 'web_pc', msToken: token()});
      const response = await fetch(signedUrl('/api/recommend/item_list/', params), {credentials: 'include'});
      const text = await response.text();
      if (text) (JSON.parse(text).itemList || []).forEach(render);
    } catch (error) {
      console.warn('recommend failed', error);
    } finally {
      loading = false;
    }
  }
  function cell(tag, e2e, text) {
    const node = document.createElement(tag);
    node.setAttribute('data-e2e', e2e);
    node.textContent = text;
    return node;
  }
  function render(item) {
    const article = document.createElement('article');
    article.setAttribute('data-e2e', 'recommend-list-item-container');
    article.dataset.id = item.id;
    article.style.minHeight = '80vh';
    const author = (item.author && item.author.uniqueId) || '_';
    const link = document.createElement('a');
    link.href = '/@' + author + '/video/' + item.id;
    link.textContent = '@' + author;
    const stats = item.stats || {};
    article.append(link, cell('div', 'video-desc', item.desc || ''),
      cell('strong', 'like-count', String(stats.diggCount ?? '')),
      cell('strong', 'comment-count', String(stats.commentCount ?? '')),
      cell('strong', 'share-count', String(stats.shareCount ?? '')));
    feed.append(article);
  }
  // A login modal covers the feed: a person's scrolling reaches it only once the modal is closed.
  const covered = () => document.querySelector('[data-e2e="login-modal"]') !== null;
  window.addEventListener('scroll', () => {
    if (!covered() && window.innerHeight + window.scrollY >= document.body.scrollHeight - 400) loadMore();
  });
  window.addEventListener('wheel', () => { if (!covered()) loadMore(); }, {passive: true});
  window.addEventListener('keydown', (event) => { if (event.key === 'ArrowDown' && !covered()) loadMore(); });
  loadMore();
})();
"""

_VIDEO_SCRIPT = """
(() => {
  const data = document.getElementById('__UNIVERSAL_DATA_FOR_REHYDRATION__');
  const detail = data && JSON.parse(data.textContent).__DEFAULT_SCOPE__['webapp.video-detail'];
  if (!detail || detail.statusCode !== 0) return;
  const params = new URLSearchParams({aid: '1988', count: '16', itemID: detail.itemInfo.itemStruct.id,
    from_page: 'video', msToken: Math.random().toString(36).slice(2)});
  fetch(signedUrl('/api/related/item_list/', params), {credentials: 'include'})
    .then((response) => response.text())
    .then((text) => {
      const list = document.getElementById('related-list');
      for (const item of (text ? JSON.parse(text).itemList || [] : [])) {
        const link = document.createElement('a');
        link.href = '/@' + ((item.author && item.author.uniqueId) || '_') + '/video/' + item.id;
        link.textContent = item.desc || item.id;
        link.setAttribute('data-e2e', 'related-video-item');
        list.append(link);
      }
    })
    .catch((error) => console.warn('related failed', error));
})();
"""

_WAF_SCRIPT = """
(() => {
  const challenge = document.getElementById('wci').textContent;
  let answer = 0;
  for (const ch of challenge) answer = (answer * 31 + ch.charCodeAt(0)) % %(modulus)s;
  document.cookie = '_wafchallengeid=' + challenge + '.' + answer + '; path=/';
  setTimeout(() => location.reload(), 50);
})();
"""


# What the site shows a guest over a usable page (contract: close it, or "Continue as guest").
LOGIN_MODAL = (
    '<div data-e2e="login-modal" role="dialog" style="position:fixed;inset:0;background:rgba(0,0,0,.6)">'
    '<p>Log in to TikTok</p><button data-e2e="modal-close-inner-button" style="padding:12px" '
    "onclick=\"this.closest('[data-e2e=login-modal]').remove()\">Continue as guest</button></div>"
)


def waf_answer(challenge: str) -> int:
    """What the interstitial's JS computes: proof that the client ran it."""
    answer = 0
    for char in challenge:
        answer = (answer * 31 + ord(char)) % WAF_MODULUS
    return answer


def _script_json(data: dict) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def _page_script(keys: SigningKeys, now: float, logic: str) -> str:
    """The page's one closure: this start's keys and the replica's time, the signing SDK, the page's logic."""
    signing = _script_json({"xbogus": keys.xbogus, "gnarly": keys.gnarly, "now": int(now)})
    return f"(() => {{\nconst SIGNING = {signing};\n{SIGNING_JS}{_SDK_SCRIPT}{logic}}})();"


def _document(title: str, body: str, scope: dict | None, script: str, login_modal: bool) -> str:
    modal = LOGIN_MODAL if login_modal else ""
    rehydration = (
        ""
        if scope is None
        else '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__" type="application/json">'
        f"{_script_json({'__DEFAULT_SCOPE__': scope})}</script>"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'</head><body><div id="app">{body}</div>{modal}{rehydration}<script>{script}</script></body></html>'
    )


def feed_page(app_context: dict, keys: SigningKeys, now: float, *, login_modal: bool = False) -> str:
    """The For You page; ``now`` is the replica's clock, which the page's ``ts`` follows."""
    return _document(
        "TikTok - Make Your Day",
        '<main id="main-content-homepage_hot"><div id="column-list-container"></div></main>',
        {"webapp.app-context": app_context},
        _page_script(keys, now, _FEED_SCRIPT),
        login_modal,
    )


def video_page(scope: dict | None, title: str, keys: SigningKeys, now: float, *, login_modal: bool = False) -> str:
    """A video page; ``scope`` None gives the shell without the rehydration script (frontierSign only)."""
    body = (
        '<main id="main-content-video_detail"><div data-e2e="browse-video"></div>'
        '<section id="related-list"></section></main>'
    )
    script = _page_script(keys, now, _VIDEO_SCRIPT if scope is not None else "")
    return _document(title, body, scope, script, login_modal)


def waf_page(challenge: str) -> str:
    script = _WAF_SCRIPT.replace("%(modulus)s", str(WAF_MODULUS))
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Please wait...</title></head>'
        f'<body><p id="wci" class="_wafchallengeid">{challenge}</p>'
        '<p id="cs" class="_wafchallengecs">Please wait...</p>'
        f"<script>{script}</script></body></html>"
    )


ACCESS_DENIED = (
    "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>"
    "You don't have permission to access this resource on this server.</BODY></HTML>"
)
CDN_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Error</title></head><body>"
    "<h1>Something went wrong</h1><p>Please try again later.</p></body></html>"
)
NOT_FOUND_PAGE = "<!DOCTYPE html><html><head><title>Page not found</title></head><body>404</body></html>"
