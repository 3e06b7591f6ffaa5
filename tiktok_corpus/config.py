"""One typed settings object: defaults < environment (``CORPUS_*``) < explicit arguments (the CLI)."""

from __future__ import annotations

import os
import shutil
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

DEFAULT_BASE_URL = "https://www.tiktok.com"
# The paper drops videos of fewer frames: validation classifies by it, exports select by it.
PAPER_MIN_FRAMES = 100
# The farthest a sighting may lie from an age and still stand for it: an export's default --age-tolerance
# at long ages, and the most an observation of `corpus track` may be late and still count as on schedule.
AGE_TOLERANCE_CAP_S = 86_400
DEBIAN_CHROMIUM = "/usr/bin/chromium"


class Settings(BaseSettings):
    """Where the corpus lives and how to reach the site.

    Build with ``Settings()`` for defaults + environment, or ``Settings(db_url=...)`` to override:
    keyword arguments win over ``CORPUS_*`` variables, which win over the defaults.
    """

    model_config = SettingsConfigDict(env_prefix="CORPUS_", extra="ignore")

    data_dir: Path = Path("corpus-data")
    # URLs that may hold passwords stay out of repr(), so a logged or printed Settings leaks nothing.
    db_url: str | None = Field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    browser_path: str | None = None
    proxy: str | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        # Checked where a site is reached (checked_base_url), not here: a bad CORPUS_BASE_URL must not stop
        # the commands that never use it, nor a --base-url that overrides it. Empty means the default.
        self.base_url = (self.base_url or DEFAULT_BASE_URL).rstrip("/")
        if not self.db_url:
            self.db_url = f"sqlite:///{self.data_dir / 'corpus.db'}"
        return self

    @property
    def safe_db_url(self) -> str:
        """The database URL with any password masked: the only form that may be printed or logged."""
        return redact_url(self.db_url or "")

    def resolved_browser_path(self) -> str | None:
        """Chromium executable for Playwright: the configured one, else Playwright's own, else Debian's.

        ``None`` means "let Playwright use the browser that ``playwright install chromium`` fetched".
        """
        if self.browser_path:
            return self.browser_path
        if playwright_chromium_installed():
            return None
        return DEBIAN_CHROMIUM if Path(DEBIAN_CHROMIUM).exists() else shutil.which("chromium")


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def _is_address(url: str, schemes: tuple[str, ...]) -> bool:
    """Whether ``url`` has one of ``schemes``, a host, a valid port (or none), no query and no space."""
    try:
        parts = urlsplit(url)  # "Invalid IPv6 URL" for an unclosed bracket
        parts.port  # noqa: B018 - parsing is the check
    except ValueError:
        return False
    return (
        parts.scheme in schemes
        and bool(parts.hostname)
        and not parts.query
        and not parts.fragment
        and not any(char.isspace() for char in url)
    )


def checked_base_url(url: str) -> str:
    """``url`` if it can be the site's address (http or https, a host, a valid port, no query): anything
    else is refused here, in one line, before a browser is started to fail on it."""
    if not _is_address(url, ("http", "https")):
        raise ConfigError(
            f"the base URL {url!r} (--base-url or CORPUS_BASE_URL) is not an http(s) address with a host, "
            f"like {DEFAULT_BASE_URL} or http://127.0.0.1:8000"
        )
    return url


def checked_proxy_url(url: str) -> str:
    """``url`` if it can be a proxy's address (http, https or socks5, a host, a valid port): anything else
    is refused in one line, its password masked, before a browser or an HTTP client fails on it."""
    if not _is_address(url, PROXY_SCHEMES):
        # Whatever precedes the last "@" may hold a password, whether or not a scheme lets urlsplit find it.
        credentials, at, host = url.rpartition("@")
        scheme, sep, _ = credentials.partition("://")
        shown = f"{scheme + sep if sep else ''}***@{host}" if at else url
        raise ConfigError(
            f"the proxy {shown!r} (--proxy or CORPUS_PROXY) is not a proxy address like "
            "http://user:pass@host:3128 or socks5://host:1080"
        )
    return url


def redact_url(url: str) -> str:
    """Mask the password of a database URL (``postgresql://u:***@h/db``), libpq's ``?password=`` too."""
    from sqlalchemy.engine import make_url  # here: settings are read by every command, SQLAlchemy by some

    try:
        parsed = make_url(url)
        if raw_at_in_password(parsed):
            return "<unparseable database URL>"
        if "password" in parsed.query:
            parsed = parsed.update_query_dict({"password": "***"})
        return parsed.render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy understands: never risk echoing a secret
        return "<unparseable database URL>"


def raw_at_in_password(url: Any) -> bool:
    """Whether a parsed database URL (SQLAlchemy's) took the rest of a password after its raw "@" for
    the host; an "@" in the user name (Cloud SQL's IAM users) is read as the user's."""
    return "@" in (url.host or "")


def playwright_browsers_dir() -> Path:
    """Where ``playwright install`` puts browsers: ``$PLAYWRIGHT_BROWSERS_PATH`` (the Docker image
    sets it) or the per-user cache."""
    custom = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    return Path(custom) if custom and custom != "0" else Path.home() / ".cache" / "ms-playwright"


def playwright_chromium_installed() -> bool:
    """True when ``playwright install chromium`` has put a browser in Playwright's cache."""
    cache = playwright_browsers_dir()
    return any(cache.glob("chromium*/chrome-linux*/chrome")) or any(
        cache.glob("chromium_headless_shell*/chrome-*/headless_shell")
    )


# The largest seed every RNG here takes (numpy's legacy seeding refuses more, and all refuse negatives).
MAX_SEED = 2**32 - 1


def described(default: Any, help: str) -> Any:
    """A dataclass field whose default and ``--help`` text the CLI reads, so neither is written twice."""
    return field(default=default, metadata={"help": help})
