"""The reviewer's case end to end: real videos (encoded by ffmpeg), probed by the real `corpus validate`,
one then replaced by an error page and exported by the CLI with ``--copy-media``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from tests.media_files import encode_lavfi, media_file_row
from tiktok_corpus.cli import app
from tiktok_corpus.store.models import StatsSnapshot
from tiktok_corpus.validate import run_validate

from .conftest import T0, _video
from .test_export import ACCESS_DENIED

SOURCES = ("testsrc2", "testsrc", "smptebars", "rgbtestsrc", "yuvtestsrc")  # five files, five hashes


def _downloaded_corpus(store, data_dir: Path) -> list[Path]:
    """A downloaded, not yet probed, video of 120 frames for each source, with a stats snapshot."""
    paths = []
    (data_dir / "videos").mkdir(parents=True)
    with store.transaction() as session:
        for i, source in enumerate(SOURCES):
            video_id = str(5000 + i)
            path = encode_lavfi(data_dir / "videos" / f"{video_id}.mp4", f"{source}=size=64x64:rate=30:duration=4")
            session.add(_video(video_id, None, probe_status="pending"))
            session.flush()
            session.add(media_file_row(video_id, data_dir, path))
            session.add(StatsSnapshot(video_id=video_id, captured_at=T0, play_count=10**i, like_count=i))
            paths.append(path)
    return paths


def test_a_video_replaced_after_validate_is_refused_until_validate_has_seen_it(settings, store):
    paths = _downloaded_corpus(store, settings.data_dir)
    assert run_validate(settings).counts == {"valid": len(paths)}
    paths[1].write_bytes(ACCESS_DENIED)
    export = ["--data-dir", str(settings.data_dir), "export", "--name", "stale", "--labels", "binary", "--copy-media"]

    refused = CliRunner().invoke(app, export)

    assert refused.exit_code == 1, refused.output
    error = refused.stderr.strip().splitlines()[-1]  # after the progress bar's last state
    assert error.startswith("error: 1 selected video file(s) changed since `corpus validate` probed them")
    assert f"e.g. {paths[1]}; run `corpus validate`" in error
    assert "Traceback" not in refused.output and not list((settings.data_dir / "exports").iterdir())

    assert run_validate(settings).counts == {"corrupt": 1, "valid": len(paths) - 1}
    done = CliRunner().invoke(app, export)

    assert done.exit_code == 0, done.output
    path = Path(done.stdout.strip().splitlines()[-1])
    rows = pd.read_parquet(path / "videos.parquet")
    assert sorted(rows["file"]) == [f"media/{p.name}" for p in paths if p != paths[1]]
    for file, sha256, frames in zip(rows["file"], rows["sha256"], rows["frame_count"]):
        assert hashlib.sha256((path / file).read_bytes()).hexdigest() == sha256 and frames == 120
