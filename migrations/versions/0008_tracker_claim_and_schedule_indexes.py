"""track_targets (status, age_s, due_at) and videos create_time indexes: a tracker's claim reads a few
rows per target age instead of sorting every due target, and its schedule refresh looks only at videos
young enough to have a target ahead, so neither grows with the backlog or the corpus.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("track_targets", schema=None) as batch_op:
        batch_op.create_index("ix_track_targets_age_queue", ["status", "age_s", "due_at"], unique=False)
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.create_index("ix_videos_create_time", ["create_time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index("ix_videos_create_time")
    with op.batch_alter_table("track_targets", schema=None) as batch_op:
        batch_op.drop_index("ix_track_targets_age_queue")
