"""Growth tracking (corpus track): the schedule of re-observations, author snapshots, and each
stats snapshot's clock and age.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stats_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("age_s", sa.Float(), nullable=True))

    op.create_table(
        "author_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clock", sa.String(length=8), nullable=True),
        sa.Column("follower_count", sa.BigInteger(), nullable=True),
        sa.Column("following_count", sa.BigInteger(), nullable=True),
        sa.Column("heart_count", sa.BigInteger(), nullable=True),
        sa.Column("video_count", sa.BigInteger(), nullable=True),
        sa.Column("digg_count", sa.BigInteger(), nullable=True),
        sa.Column("video_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["authors.id"], name=op.f("fk_author_snapshots_author_id_authors"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_author_snapshots")),
    )
    with op.batch_alter_table("author_snapshots", schema=None) as batch_op:
        batch_op.create_index("ix_author_snapshots_author", ["author_id", "captured_at"], unique=False)

    op.create_table(
        "track_targets",
        sa.Column("video_id", sa.String(length=32), nullable=False),
        sa.Column("age_s", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=24), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_kind", sa.String(length=48), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=96), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("observed_age_s", sa.Float(), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["stats_snapshots.id"],
            name=op.f("fk_track_targets_snapshot_id_stats_snapshots"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["video_id"], ["videos.id"], name=op.f("fk_track_targets_video_id_videos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("video_id", "age_s", name=op.f("pk_track_targets")),
    )
    with op.batch_alter_table("track_targets", schema=None) as batch_op:
        batch_op.create_index("ix_track_targets_queue", ["status", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_table("track_targets")
    op.drop_table("author_snapshots")
    with op.batch_alter_table("stats_snapshots", schema=None) as batch_op:
        batch_op.drop_column("age_s")
        batch_op.drop_column("clock")
