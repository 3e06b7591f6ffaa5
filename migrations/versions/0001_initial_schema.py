"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authors",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("unique_id", sa.String(length=128), nullable=True),
        sa.Column("nickname", sa.Text(), nullable=True),
        sa.Column("sec_uid", sa.Text(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=True),
        sa.Column("private_account", sa.Boolean(), nullable=True),
        sa.Column("follower_count", sa.BigInteger(), nullable=True),
        sa.Column("following_count", sa.BigInteger(), nullable=True),
        sa.Column("heart_count", sa.BigInteger(), nullable=True),
        sa.Column("video_count", sa.BigInteger(), nullable=True),
        sa.Column("digg_count", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authors")),
    )
    with op.batch_alter_table("authors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_authors_unique_id"), ["unique_id"], unique=False)

    op.create_table(
        "crawl_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("host", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_runs")),
    )
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_exports_name")),
    )
    op.create_table(
        "hashtags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("tiktok_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hashtags")),
        sa.UniqueConstraint("name", name=op.f("uq_hashtags_name")),
    )
    op.create_table(
        "videos",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("author_id", sa.String(length=32), nullable=True),
        sa.Column("desc", sa.Text(), nullable=True),
        sa.Column("create_time", sa.BigInteger(), nullable=True),
        sa.Column("item_kind", sa.String(length=16), server_default="video", nullable=False),
        sa.Column("status_code", sa.Integer(), server_default="0", nullable=False),
        sa.Column("declared_duration_s", sa.Float(), nullable=True),
        sa.Column("declared_size", sa.BigInteger(), nullable=True),
        sa.Column("declared_width", sa.Integer(), nullable=True),
        sa.Column("declared_height", sa.Integer(), nullable=True),
        sa.Column("codec", sa.String(length=32), nullable=True),
        sa.Column("music_id", sa.String(length=32), nullable=True),
        sa.Column("music_title", sa.Text(), nullable=True),
        sa.Column("media_urls", sa.JSON(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parent_id", sa.String(length=32), nullable=True),
        sa.Column("depth", sa.Integer(), server_default="0", nullable=False),
        sa.Column("source", sa.String(length=16), server_default="foryou", nullable=False),
        sa.Column("crawl_run_id", sa.Integer(), nullable=True),
        sa.Column("expand_order", sa.Float(), server_default="0", nullable=False),
        sa.Column("expand_status", sa.String(length=24), server_default="pending", nullable=False),
        sa.Column("expand_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("expand_error_kind", sa.String(length=48), nullable=True),
        sa.Column("expand_error", sa.Text(), nullable=True),
        sa.Column("expand_lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expand_worker", sa.String(length=96), nullable=True),
        sa.Column("expand_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("download_status", sa.String(length=24), server_default="pending", nullable=False),
        sa.Column("download_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("download_error_kind", sa.String(length=48), nullable=True),
        sa.Column("download_error", sa.Text(), nullable=True),
        sa.Column("download_lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("download_worker", sa.String(length=96), nullable=True),
        sa.Column("download_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_status", sa.String(length=24), server_default="pending", nullable=False),
        sa.Column("probe_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("probe_error_kind", sa.String(length=48), nullable=True),
        sa.Column("probe_error", sa.Text(), nullable=True),
        sa.Column("probe_lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_worker", sa.String(length=96), nullable=True),
        sa.Column("probe_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["authors.id"], name=op.f("fk_videos_author_id_authors")),
        sa.ForeignKeyConstraint(["crawl_run_id"], ["crawl_runs.id"], name=op.f("fk_videos_crawl_run_id_crawl_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_videos")),
    )
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_videos_author_id"), ["author_id"], unique=False)
        batch_op.create_index("ix_videos_download_queue", ["download_status"], unique=False)
        batch_op.create_index("ix_videos_expand_queue", ["expand_status", "expand_order"], unique=False)
        batch_op.create_index("ix_videos_probe_queue", ["probe_status"], unique=False)

    op.create_table(
        "download_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("video_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("url_kind", sa.String(length=32), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=48), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["video_id"], ["videos.id"], name=op.f("fk_download_attempts_video_id_videos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_download_attempts")),
    )
    with op.batch_alter_table("download_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_download_attempts_video_id"), ["video_id"], unique=False)

    op.create_table(
        "media_files",
        sa.Column("video_id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_url_kind", sa.String(length=32), nullable=True),
        sa.Column("probed_sha256", sa.String(length=64), nullable=True),
        sa.Column("probed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("container", sa.String(length=64), nullable=True),
        sa.Column("video_codec", sa.String(length=32), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("avg_fps", sa.Float(), nullable=True),
        sa.Column("r_fps", sa.Float(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("frame_count", sa.Integer(), nullable=True),
        sa.Column("frame_count_method", sa.String(length=16), nullable=True),
        sa.Column("has_audio", sa.Boolean(), nullable=True),
        sa.Column("audio_codec", sa.String(length=32), nullable=True),
        sa.Column("bitrate", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["video_id"], ["videos.id"], name=op.f("fk_media_files_video_id_videos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("video_id", name=op.f("pk_media_files")),
    )
    op.create_table(
        "related_edges",
        sa.Column("parent_id", sa.String(length=32), nullable=False),
        sa.Column("child_id", sa.String(length=32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"], ["videos.id"], name=op.f("fk_related_edges_child_id_videos"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["videos.id"], name=op.f("fk_related_edges_parent_id_videos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("parent_id", "child_id", name=op.f("pk_related_edges")),
    )
    op.create_table(
        "stats_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("video_id", sa.String(length=32), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("play_count", sa.BigInteger(), nullable=True),
        sa.Column("like_count", sa.BigInteger(), nullable=True),
        sa.Column("comment_count", sa.BigInteger(), nullable=True),
        sa.Column("share_count", sa.BigInteger(), nullable=True),
        sa.Column("collect_count", sa.BigInteger(), nullable=True),
        sa.Column("repost_count", sa.BigInteger(), nullable=True),
        sa.Column("exact", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("crawl_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["crawl_run_id"], ["crawl_runs.id"], name=op.f("fk_stats_snapshots_crawl_run_id_crawl_runs")
        ),
        sa.ForeignKeyConstraint(
            ["video_id"], ["videos.id"], name=op.f("fk_stats_snapshots_video_id_videos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_snapshots")),
    )
    with op.batch_alter_table("stats_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stats_snapshots_captured_at"), ["captured_at"], unique=False)
        batch_op.create_index("ix_stats_snapshots_latest", ["video_id", "captured_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_stats_snapshots_video_id"), ["video_id"], unique=False)

    op.create_table(
        "video_hashtags",
        sa.Column("video_id", sa.String(length=32), nullable=False),
        sa.Column("hashtag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hashtag_id"], ["hashtags.id"], name=op.f("fk_video_hashtags_hashtag_id_hashtags"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["video_id"], ["videos.id"], name=op.f("fk_video_hashtags_video_id_videos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("video_id", "hashtag_id", name=op.f("pk_video_hashtags")),
    )


def downgrade() -> None:
    op.drop_table("video_hashtags")
    with op.batch_alter_table("stats_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_snapshots_video_id"))
        batch_op.drop_index("ix_stats_snapshots_latest")
        batch_op.drop_index(batch_op.f("ix_stats_snapshots_captured_at"))

    op.drop_table("stats_snapshots")
    op.drop_table("related_edges")
    op.drop_table("media_files")
    with op.batch_alter_table("download_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_download_attempts_video_id"))

    op.drop_table("download_attempts")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index("ix_videos_probe_queue")
        batch_op.drop_index("ix_videos_expand_queue")
        batch_op.drop_index("ix_videos_download_queue")
        batch_op.drop_index(batch_op.f("ix_videos_author_id"))

    op.drop_table("videos")
    op.drop_table("hashtags")
    op.drop_table("exports")
    op.drop_table("crawl_runs")
    with op.batch_alter_table("authors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authors_unique_id"))

    op.drop_table("authors")
