"""The typer app, its sub-apps, the consoles and the error boundary every command shares."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from ..config import Settings
from ..errors import CorpusError, disk_full, not_permitted

console = Console()
err_console = Console(stderr=True)


# What Ctrl-C leaves, for the commands that do not say it themselves (train and features do, through
# say_interrupted). The exit is 130 either way; the serving commands (browse, replica serve) catch it and
# stop with 0.
INTERRUPTED_HINTS = {
    "crawl": "what was seen and downloaded so far is kept; the same command goes on from there",
    "download": "finished files are kept and the rest given back; the same command goes on from there",
    "validate": "finished probes are kept; the same command goes on from there",
    "track": "observations made so far are kept; the same command goes on with what is still due",
    "export": "no version was written; run the command again",
    "report": "no new page was written (one there already is whole, its figures inside it); run the command again",
    "ablate": "the feature tables finished so far are cached beside the export (the video embedding's rows "
    "as they were made), and no ablation was written; the same command goes on from them",
    "demo": "the same command goes on from the corpus in --out",
    "replica": "the media files finished so far are cached; the same command goes on from them",  # making them
}


JSON_FLAG = "--json"  # every command that prints a summary as JSON takes it under this name
_OWN_HINT = "corpus.interrupted_hint"  # where say_interrupted leaves a command's own hint (click's shared meta)


def say_interrupted(ctx: typer.Context, hint: str) -> None:
    """A command's own Ctrl-C hint (one only it can word: where its run stands), printed now and handed to
    the error boundary for the ``--json`` document (through the meta its context shares with the group's)."""
    err_console.print(f"interrupted: {hint}", highlight=False, soft_wrap=True)
    ctx.meta[_OWN_HINT] = hint


INTERRUPTED_EXIT_CODE = 130  # click's exit after Ctrl-C: 128 + SIGINT, as a shell reports it


class CorpusGroup(TyperGroup):
    """Turns expected library errors, a full disk and a refused file wherever they strike into one clear
    line and the error's exit code; says after Ctrl-C how to go on."""

    def invoke(self, ctx):
        # Read before click takes them (the command's name aside, its arguments): whether it was asked
        # for JSON, its errors then too.
        as_json = JSON_FLAG in ctx.args
        try:
            return super().invoke(ctx)
        except CorpusError as exc:
            if not exc.expected:
                raise
            self._fail(exc, as_json=as_json)
        except KeyboardInterrupt:
            hint = INTERRUPTED_HINTS.get(ctx.invoked_subcommand or "")
            if hint:  # after a newline: a live display's last line, or the terminal's ^C, ends without one
                err_console.print(f"\ninterrupted: {hint}", highlight=False, soft_wrap=True)
            if as_json:  # a script reads this ending as it reads an error's
                hint = hint or ctx.meta.get(_OWN_HINT)
                message = f"interrupted: {hint}" if hint else "interrupted"
                document = {"error": "interrupted", "message": message, "exit_code": INTERRUPTED_EXIT_CODE}
                typer.echo(json.dumps(document, sort_keys=True))
            raise
        except Exception as exc:
            known = disk_full(exc) or not_permitted(exc)
            if known is None:
                raise
            self._fail(known, as_json=as_json)

    @staticmethod
    def _fail(error: CorpusError, *, as_json: bool) -> NoReturn:
        """The error's line on stderr and its exit code; with ``--json``, its document on stdout too, so
        a script reads every ending the same way (a blocked crawl's counts and block kinds included)."""
        # Text, not markup: a message may hold brackets ("[/]", IPv6 hosts) that rich would eat.
        err_console.print(Text.assemble(("error:", "bold red"), " ", error.message), soft_wrap=True)
        if as_json:
            document = {"error": error.kind, "message": error.message, "exit_code": error.exit_code}
            if error.summary is not None:
                document["summary"] = error.summary
            typer.echo(json.dumps(document, sort_keys=True, default=str))
        raise typer.Exit(error.exit_code) from None


# Locals stay out of tracebacks: they would print database URLs with their passwords.
app = typer.Typer(
    cls=CorpusGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Build research-grade TikTok video datasets and train virality models.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema management.")
replica_app = typer.Typer(no_args_is_help=True, help="The local TikTok replica site (tests, demo).")
app.add_typer(db_app, name="db")
app.add_typer(replica_app, name="replica")


def reflow_help(*apps: typer.Typer) -> None:
    """Each command's help as its docstring's paragraphs, one line each: rich keeps a docstring's own
    line breaks, so a paragraph wrapped at the source's width broke mid-sentence in the terminal's."""
    for typer_app in apps:
        for command in typer_app.registered_commands:
            text = inspect.cleandoc(command.help or (command.callback.__doc__ if command.callback else None) or "")
            command.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in text.split("\n\n"))


@app.callback()
def _global(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None, "--db", help="Database URL (env CORPUS_DB_URL); default sqlite:///<data dir>/corpus.db."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Where files live (env CORPUS_DATA_DIR; default ./corpus-data)."
    ),
) -> None:
    overrides: dict[str, Any] = {k: v for k, v in {"db_url": db, "data_dir": data_dir}.items() if v is not None}
    ctx.obj = Settings(**overrides)


def settings_of(ctx: typer.Context, **overrides: object) -> Settings:
    """The root command's settings, with this command's non-None overrides applied."""
    settings: Settings = ctx.find_root().obj
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings.model_validate({**settings.model_dump(), **given}) if given else settings
