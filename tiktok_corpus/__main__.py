"""``python -m tiktok_corpus`` (and ``torchrun -m tiktok_corpus train ...``) runs the CLI; so does the
``corpus`` script, through :func:`main`."""

import signal
import sys


def main() -> None:
    """The CLI, with a Ctrl-C while it loads ending as quietly as one while it runs (exit 130, no traceback).
    SIGTERM (what ``docker stop`` and a scheduler send) stops it as a Ctrl-C does, keeping what is done;
    unhandled it killed the process on the spot, claims and ``.part`` files left as after kill -9."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        from .cli import app
    except KeyboardInterrupt:
        sys.exit(130)
    app(prog_name="corpus")


if __name__ == "__main__":
    main()
