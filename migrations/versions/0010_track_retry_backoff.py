"""track_targets.retry_at: a target whose try failed waits out a backoff on the site's clock before its
next claim, so a video whose reads time out no longer spends its tries in seconds, nor an outage them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("track_targets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_at", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_track_targets_retries", ["status", "retry_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("track_targets", schema=None) as batch_op:
        batch_op.drop_index("ix_track_targets_retries")
        batch_op.drop_column("retry_at")
