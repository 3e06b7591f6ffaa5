"""``python -m tiktok_corpus`` (and ``torchrun -m tiktok_corpus train ...``) runs the CLI; so does the
``corpus`` script, through :func:`main`."""

import sys


def main() -> None:
    """The CLI, with a Ctrl-C while it loads ending as quietly as one while it runs (exit 130, no traceback)."""
    try:
        from .cli import app
    except KeyboardInterrupt:
        sys.exit(130)
    app(prog_name="corpus")


if __name__ == "__main__":
    main()
