"""Options whose default and help come from the library's options dataclasses (each written once)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import typer

from ..clock import Clock, ScaledClock
from ..config import DEFAULT_BASE_URL, MAX_SEED, Settings, checked_base_url, checked_proxy_url
from ..errors import ConfigError
from .app import settings_of


def option_from(options_type: type, name: str, *flags: str, **kwargs: Any) -> Any:
    """``typer.Option`` for the field ``name`` of ``options_type``: its default and its ``described`` help."""
    spec = {f.name: f for f in dataclasses.fields(options_type)}[name]
    default = kwargs.pop("default", spec.default)
    return typer.Option(default, *flags, help=kwargs.pop("help", spec.metadata.get("help")), **kwargs)


def seed_option(options_type: type, **kwargs: Any) -> Any:
    """``--seed`` of ``options_type``, refused outside ``[0, MAX_SEED]`` before any work (numpy and torch
    raise on a negative seed, after the data is loaded or the models fitted)."""
    return option_from(options_type, "seed", min=0, max=MAX_SEED, **kwargs)


def no_file_in_the_way(value: Path | None) -> Path | None:
    """The callback of an option naming a folder to write in (``--out``, ``--cache-dir``): a file at that
    path, or where one of the folders above it would be, is refused before any work, not when the work's
    first write fails on it with a traceback (after a model was fitted)."""
    if value is None:
        return value
    existing = next(path for path in (value, *value.absolute().parents) if path.exists())
    if not existing.is_dir():
        where = "" if existing == value else f", so {value} cannot be made"
        raise typer.BadParameter(f"{existing} is a file{where}; give a folder (new or existing)")
    return value


def export_dir_argument() -> Any:
    """The EXPORT_DIR argument of the commands that read an export (named in capitals in --help)."""
    return typer.Argument(..., metavar="EXPORT_DIR", help="Export directory (videos.parquet + manifest.json).")


def joined(numbers: tuple[float, ...]) -> str:
    """A tuple default as the comma-separated text the option takes (``0.7,0.15,0.15``)."""
    return ",".join(f"{n:g}" for n in numbers)


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether the option ``name`` was given (on the command line or by its environment variable),
    rather than left at its default."""
    source = ctx.get_parameter_source(name)  # typer's own click's enum: compared by name
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def base_url_option(purpose: str, default: str = DEFAULT_BASE_URL) -> Any:
    """``--base-url``: the site a command talks to (crawl, track, download), ``purpose`` beginning its help.

    It reads ``CORPUS_BASE_URL`` itself, so a command sees ``None`` only when neither names a site (download
    then takes the one its corpus was crawled from)."""
    return typer.Option(
        None,
        "--base-url",
        envvar="CORPUS_BASE_URL",
        show_envvar=False,
        help=f"{purpose} (env CORPUS_BASE_URL; default {default}).",
    )


def site_settings(ctx: typer.Context, base_url: str | None, proxy: str | None) -> Settings:
    """The settings of a command that reaches the site, its base URL checked before anything is made: the
    option's (or ``CORPUS_BASE_URL``'s, empty meaning none) over the root's."""
    settings = settings_of(ctx, base_url=base_url or None, proxy=proxy)
    checked_base_url(base_url or settings.base_url)  # as given: the settings strip a trailing "/"
    if settings.proxy:
        checked_proxy_url(settings.proxy)
    return settings


def proxy_option() -> Any:
    """``--proxy``: the proxy every request of the command goes through (crawl, track, download)."""
    return typer.Option(None, "--proxy", help="Proxy for every request: http://user:pass@host:port (env CORPUS_PROXY).")


def time_scale_option() -> Any:
    """``--time-scale``: the speed of a replica's fast clock, for commands that read the site's time."""
    return typer.Option(
        None,
        "--time-scale",
        min=0.001,
        help="For a replica whose clock runs fast (corpus replica serve --time-scale): the same scale. "
        "Omit for tiktok.com (the system clock).",
    )


def time_origin_option() -> Any:
    """``--time-origin``: the origin of a replica's fast clock, given with ``--time-scale``."""
    return typer.Option(
        None, "--time-origin", help="With --time-scale: the replica's clock origin (unix seconds), as it printed it."
    )


def site_clock(time_scale: float | None, time_origin: float | None) -> Clock:
    """The site's clock: this machine's, or a replica's fast one when both of its numbers are given."""
    if (time_scale is None) != (time_origin is None):
        raise ConfigError("--time-scale and --time-origin go together (both as the replica printed them)")
    return time.time if time_scale is None or time_origin is None else ScaledClock(time_origin, time_scale)
