"""track_targets.observed_age_s of a gone target: the age the video was found deleted or private at, on
the site's clock as its ages are (exports read it; the row's updated_at is this machine's clock). Rows
found gone before it are given the age their updated_at says.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_targets = sa.table(
    "track_targets",
    sa.column("video_id", sa.String),
    sa.column("age_s", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("observed_age_s", sa.Float),
)
_videos = sa.table("videos", sa.column("id", sa.String), sa.column("create_time", sa.BigInteger))


def upgrade() -> None:
    connection = op.get_bind()
    found = connection.execute(
        sa.select(_targets.c.video_id, _targets.c.age_s, _targets.c.updated_at, _videos.c.create_time)
        .join(_videos, _videos.c.id == _targets.c.video_id)
        .where(
            _targets.c.status == "gone",
            _targets.c.observed_age_s.is_(None),
            _targets.c.updated_at.is_not(None),
            _videos.c.create_time.is_not(None),
        )
    ).all()
    for video_id, age_s, updated_at, create_time in found:
        moment = updated_at if updated_at.tzinfo else updated_at.replace(tzinfo=UTC)
        connection.execute(
            sa.update(_targets)
            .where(_targets.c.video_id == video_id, _targets.c.age_s == age_s)
            .values(observed_age_s=moment.timestamp() - create_time)
        )


def downgrade() -> None:
    """Nothing to undo: the ages stay, which the older code does not read and an upgrade again keeps (set
    to NULL, they came back from updated_at, this machine's clock, in place of the site's)."""
