"""videos.expand_not_before and crawl_runs.worker: a parent whose related list failed waits out a backoff
before its next claim (so an outage no longer uses up its attempts in minutes), and each crawl run names
its process (host:pid), so a later crawl on that host can tell a run killed with kill -9 from a live one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expand_not_before", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=96), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crawl_runs", schema=None) as batch_op:
        batch_op.drop_column("worker")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_column("expand_not_before")
