"""Download and probe queue indexes in claim order, (status, id): a claim walks its pending rows in id
order and stops at its limit, where it sorted every pending row (or every video) before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        for stage in ("download", "probe"):
            batch_op.drop_index(f"ix_videos_{stage}_queue")
            batch_op.create_index(f"ix_videos_{stage}_queue", [f"{stage}_status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        for stage in ("download", "probe"):
            batch_op.drop_index(f"ix_videos_{stage}_queue")
            batch_op.create_index(f"ix_videos_{stage}_queue", [f"{stage}_status"], unique=False)
