"""The worker session's cookies and saved state, for a later ``corpus download`` to fetch as that browser.

:class:`SessionExport` is a part of :class:`.browser.WorkerSession`, kept apart so each file holds one
job; the attributes it reads are the session's, declared here for the type checker.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page

from .session_files import META_FILE, STATE_FILE, write_private


class SessionExport:
    """Cookies and the storage state of the session's browser context (a mixin of the worker session)."""

    context: BrowserContext | None
    page: Page | None
    user_agent: str | None

    async def cookies(self) -> list[dict[str, Any]]:
        assert self.context is not None
        return [dict(cookie) for cookie in await self.context.cookies()]

    async def save_session(self, directory: Path) -> None:
        """Storage state (0600: it holds cookies) and the user agent, for a later ``corpus download``."""
        assert self.context is not None and self.page is not None
        directory.mkdir(parents=True, exist_ok=True)
        state = await self.context.storage_state()
        user_agent = self.user_agent or await self.page.evaluate("navigator.userAgent")
        write_private(directory / STATE_FILE, json.dumps(state))
        (directory / META_FILE).write_text(json.dumps({"user_agent": user_agent, "saved_at": time.time()}))
