"""``python -m tiktok_corpus`` (and ``torchrun -m tiktok_corpus train ...``) runs the CLI."""

from .cli import app

app(prog_name="corpus")
