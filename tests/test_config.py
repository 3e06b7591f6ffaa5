"""Settings precedence (defaults < CORPUS_* environment < arguments) and secrets kept out of output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tiktok_corpus import config
from tiktok_corpus.config import DEFAULT_BASE_URL, Settings, checked_base_url, redact_url
from tiktok_corpus.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Start every test from the defaults, whatever the developer's shell exports."""
    for name in list(os.environ):
        if name.startswith("CORPUS_") or name == "PLAYWRIGHT_BROWSERS_PATH":
            monkeypatch.delenv(name)


def test_defaults():
    settings = Settings()

    assert settings.data_dir == Path("corpus-data")
    assert settings.db_url == "sqlite:///corpus-data/corpus.db"
    assert settings.base_url == DEFAULT_BASE_URL == "https://www.tiktok.com"
    assert (settings.browser_path, settings.proxy) == (None, None)


def test_environment_beats_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("CORPUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CORPUS_BASE_URL", "http://127.0.0.1:8123/")
    monkeypatch.setenv("CORPUS_BROWSER_PATH", "/opt/chrome")
    monkeypatch.setenv("CORPUS_PROXY", "http://proxy:3128")

    settings = Settings()

    assert settings.data_dir == tmp_path
    assert settings.db_url == f"sqlite:///{tmp_path}/corpus.db"  # follows the data dir
    assert settings.base_url == "http://127.0.0.1:8123"
    assert (settings.browser_path, settings.proxy) == ("/opt/chrome", "http://proxy:3128")

    monkeypatch.setenv("CORPUS_DB_URL", "postgresql+psycopg://postgres@db/corpus")
    assert Settings().db_url == "postgresql+psycopg://postgres@db/corpus"


def test_arguments_beat_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CORPUS_DATA_DIR", "/from/env")
    monkeypatch.setenv("CORPUS_DB_URL", "sqlite:////from/env.db")
    monkeypatch.setenv("CORPUS_BASE_URL", "http://env")

    settings = Settings(data_dir=tmp_path, db_url="sqlite:///arg.db", base_url="http://arg/")

    assert (settings.data_dir, settings.db_url, settings.base_url) == (tmp_path, "sqlite:///arg.db", "http://arg")


@pytest.mark.parametrize(
    "url",
    [
        *("notaurl", "ftp://x", "http://", "http:///foryou", "http://127.0.0.1:99999", "http://h/?q=1", "http://a b"),
        *("", "http://[::1"),  # an unclosed bracket was a ValueError's traceback
    ],
)
def test_a_base_url_that_cannot_be_the_sites_address_is_refused_in_one_line(url):
    """Refused in one line before any browser starts to fail on it, where a site is to be reached (the
    commands that reach one check it first: tests/test_cli.py)."""
    with pytest.raises(ConfigError, match=r"is not an http\(s\) address with a host") as refused:
        checked_base_url(url)
    assert repr(url) in refused.value.message and "\n" not in refused.value.message


@pytest.mark.parametrize(
    "url", ["https://www.tiktok.com/", "http://127.0.0.1:8000", "http://[::1]:8000", "http://h/base/"]
)
def test_a_base_url_with_a_host_is_taken_without_its_trailing_slash(url):
    assert Settings(base_url=url).base_url == url.rstrip("/")


def test_passwords_never_reach_output():
    settings = Settings(
        db_url="postgresql+psycopg://corpus:s3cret@db:5432/corpus", proxy="http://user:pr0xy@proxy:3128"
    )

    assert settings.safe_db_url == "postgresql+psycopg://corpus:***@db:5432/corpus"
    assert "s3cret" not in repr(settings) and "pr0xy" not in repr(settings)
    assert "s3cret" not in str(settings)
    assert redact_url("not a url :// s3cret@") == "<unparseable database URL>"
    # libpq's own spelling of a password (printed whole in errors, the report and export manifests before)
    for url in ("postgresql+psycopg://u@h/db?password=s3cret", "postgresql+psycopg://u@/db?host=/run&password=s3cret"):
        assert "s3cret" not in redact_url(url) and redact_url(url).startswith("postgresql+psycopg://u@")


def test_browser_resolution(monkeypatch, tmp_path):
    debian = tmp_path / "debian-chromium"
    debian.touch()
    monkeypatch.setattr(config, "DEBIAN_CHROMIUM", str(debian))
    browsers = tmp_path / "ms-playwright"
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(browsers))

    assert Settings(browser_path="/opt/chrome").resolved_browser_path() == "/opt/chrome"
    assert Settings().resolved_browser_path() == str(debian)  # no Playwright browser: Debian's

    playwright_chrome = browsers / "chromium-1200" / "chrome-linux64" / "chrome"
    playwright_chrome.parent.mkdir(parents=True)
    playwright_chrome.touch()
    assert Settings().resolved_browser_path() is None  # Playwright's own, launched by default
