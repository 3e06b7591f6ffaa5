"""What the site's anti-bot pages look like, told apart from a usable page whatever its captions say."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

# A page's embedded JSON (rehydration data, SIGI_STATE, __NEXT_DATA__) holds captions and user names:
# anyone's words, so never a block marker.
_DATA_TYPE = re.compile(r"\btype=[\"']application/json[\"']", re.I)
_SCRIPT_START = re.compile(r"<script\b", re.I)
_SCRIPT_END = re.compile(r"</script\s*>", re.I)
# Markers that are elements' ids and classes: a caption shown in the page is text, and its "<" and quotes
# come out escaped in the HTML, so it cannot pose as an element.
_WAF = re.compile(r"<[a-z][^<>]*\s(?:id=[\"']wci[\"']|class=[\"'][^\"']*_wafchallengeid)", re.I)
_CAPTCHA = re.compile(r"<[a-z][^<>]*\s(?:class|id)=[\"'][^\"']*captcha(?:-verify|_container|-disable-scroll)", re.I)
LOGIN_PATH = "/login"
# The login modal sits over a usable page, logged out: closing it is all it asks.
LOGIN_MODAL_CLOSE = '[data-e2e="modal-close-inner-button"]'


def detect_block(html: str) -> str | None:
    """Name the anti-bot page an HTML body is, or None: waf | captcha | login | error_panel.

    Only the page's own markup counts: its embedded JSON is set aside, and the WAF and captcha markers
    must be elements. Words a caption could hold as well ("Verify to continue", "Something went wrong")
    count only on a page that embeds no site data. A login modal is no block (see ``LOGIN_MODAL_CLOSE``).
    """
    markup, embedded = _without_data_scripts(html)
    if _WAF.search(markup):
        return "waf"
    if _CAPTCHA.search(markup):
        return "captcha"
    if embedded:
        return None
    if "Verify to continue" in markup:
        return "captcha"
    if f"{LOGIN_PATH}?" in markup[:2000]:
        return "login"
    if "Something went wrong" in markup and "Refresh" in markup:
        return "error_panel"
    return None


def _without_data_scripts(html: str) -> tuple[str, int]:
    """The page's markup without its embedded JSON scripts (one left open runs to the end), and how many
    it held. The whole page: cut at 200,000 characters, a feed whose script came later was a page of
    captions without data, and a caption saying "Verify to continue" made it a captcha page."""
    kept, at, scripts = [], 0, 0
    for tag, start, after in script_tags(html):
        if start < at or not _DATA_TYPE.search(tag):  # a tag inside the script set aside, or no data
            continue
        kept.append(html[at:start])
        scripts += 1
        closing = _SCRIPT_END.search(html, after)
        at = closing.end() if closing else len(html)
    kept.append(html[at:])
    return "".join(kept), scripts


def script_tags(html: str) -> Iterator[tuple[str, int, int]]:
    """Each ``<script ...>`` opening tag as (its text, where it starts, where what follows it starts),
    walked tag to tag so each character is looked at once. Regexes that matched a whole tag rescanned
    the rest of the page from every tag of a hostile page of unclosed ones: two minutes at 1 MB."""
    found = _SCRIPT_START.search(html)
    while found:
        end = html.find(">", found.end())
        if end == -1:
            return
        yield html[found.start() : end + 1], found.start(), end + 1
        found = _SCRIPT_START.search(html, end + 1)


def is_login_wall(url: str) -> bool:
    """Whether a navigation ended on the login page (a redirect there is the login wall)."""
    path = urlsplit(url).path
    return path == LOGIN_PATH or path.startswith(f"{LOGIN_PATH}/")
