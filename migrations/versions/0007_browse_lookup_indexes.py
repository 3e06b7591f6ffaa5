"""related_edges child_id and video_hashtags hashtag_id indexes: a video's page finds who listed it, and
the grid's hashtag filter finds the hashtag's videos, without scanning either table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("related_edges", schema=None) as batch_op:
        batch_op.create_index("ix_related_edges_child", ["child_id"], unique=False)
    with op.batch_alter_table("video_hashtags", schema=None) as batch_op:
        batch_op.create_index("ix_video_hashtags_hashtag", ["hashtag_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("video_hashtags", schema=None) as batch_op:
        batch_op.drop_index("ix_video_hashtags_hashtag")
    with op.batch_alter_table("related_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_related_edges_child")
