"""Write the next Alembic revision of migrations/ from the models' differences with the current head.

    .venv/bin/python scripts/new_migration.py "what changed" 0003

Review what it writes (autogenerate misses renames and some type changes); tests/store/test_migrations.py
then checks that a database migrated to the head equals the models exactly.
"""

import sys
import tempfile
from pathlib import Path

from alembic import command

from tiktok_corpus.store.db import alembic_config, make_engine

ROOT = Path(__file__).resolve().parents[1]
message, rev_id = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as tmp:
    cfg = alembic_config(make_engine(f"sqlite:///{tmp}/head.db"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    command.upgrade(cfg, "head")
    command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
