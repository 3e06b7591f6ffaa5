"""Regenerate migrations/versions/0001_initial_schema.py from the models.

Only valid while no release has shipped revision 0001: after the first release, schema changes are
new revisions (`alembic revision --autogenerate`), never edits of an applied one.
"""

import tempfile
from pathlib import Path

from alembic import command

from tiktok_corpus.store.db import alembic_config, make_engine

ROOT = Path(__file__).resolve().parents[1]
target = ROOT / "migrations" / "versions" / "0001_initial_schema.py"
target.unlink(missing_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    cfg = alembic_config(make_engine(f"sqlite:///{tmp}/empty.db"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
text = target.read_text()
lines = [ln for ln in text.splitlines() if "### commands auto generated" not in ln
         and "### end Alembic commands" not in ln]
lines = [("Create Date: 2026-11-27" if ln.startswith("Create Date:") else ln) for ln in lines]
target.write_text("\n".join(lines) + "\n")
print(f"rewrote {target.relative_to(ROOT)}")
