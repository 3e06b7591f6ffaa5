"""``python -m tiktok_corpus`` (and ``torchrun -m tiktok_corpus train ...``) runs the CLI; so does the
``corpus`` script, through :func:`main`."""

import atexit
import sys

from . import _signals


def main() -> None:
    """The CLI, with a Ctrl-C while it loads ending as quietly as one while it runs (exit 130, no traceback).
    SIGTERM (what ``docker stop`` and a scheduler send) stops it as a Ctrl-C does, keeping what is done,
    and a stop delivered twice at once (``timeout`` signals the command, then its group) stops it once
    (:mod:`._signals`)."""
    try:
        _signals.install()
        atexit.register(_signals.ignore_stops)  # run after the interpreter has joined the threads still at work
        from .cli import app
    except KeyboardInterrupt:
        sys.exit(130)
    app(prog_name="corpus")


if __name__ == "__main__":
    main()
