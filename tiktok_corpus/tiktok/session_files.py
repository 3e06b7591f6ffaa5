"""The crawler's browser session on disk, for a later ``corpus download`` to fetch files as that browser.

Under ``{data_dir}/session/``: Playwright's storage state (0600: it holds cookies) and the User-Agent
the cookies were issued to. Written by the browser session, read back by the downloader.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)


@dataclass(frozen=True)
class BrowserSession:
    """Cookies (Playwright ``storage_state`` dicts) and the User-Agent they were issued to."""

    cookies: tuple[dict, ...] = ()
    user_agent: str = DEFAULT_USER_AGENT


# The crawler's saved browser session, read back by a later `corpus download`.
STATE_FILE, META_FILE = "state.json", "meta.json"


def session_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "session"


def load_saved_session(settings: Settings) -> BrowserSession | None:
    """The crawler's saved session, or None when there is none (or it cannot be read)."""
    state_file, meta_file = session_dir(settings) / STATE_FILE, session_dir(settings) / META_FILE
    try:
        cookies = json.loads(state_file.read_text("utf-8")).get("cookies") or []
    except (OSError, ValueError, AttributeError):
        return None
    try:
        user_agent = json.loads(meta_file.read_text("utf-8")).get("user_agent") or DEFAULT_USER_AGENT
    except (OSError, ValueError, AttributeError):
        user_agent = DEFAULT_USER_AGENT
    return BrowserSession(tuple(c for c in cookies if isinstance(c, dict)), user_agent)


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only, replacing any older one atomically."""
    part = path.with_suffix(path.suffix + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(part, 0o600)
    os.replace(part, path)
