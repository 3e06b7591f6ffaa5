"""run_validate on a real SQLite (and Postgres) store with ffmpeg-made files, and the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.media_files import date_now, zero_middle
from tiktok_corpus.cli import app
from tiktok_corpus.config import Settings
from tiktok_corpus.download import download_pending
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.store import db
from tiktok_corpus.store.db import open_store, upgrade_database
from tiktok_corpus.store.downloads import DAMAGED_PROBES
from tiktok_corpus.store.models import MediaFile, Video, utcnow
from tiktok_corpus.store.probes import requeue_probes
from tiktok_corpus.store.queue import claim
from tiktok_corpus.validate import inspection, run_validate
from tiktok_corpus.validate import run as validate_run

from .conftest import MEDIA, add_download, ground_truth


def _rows(store) -> dict[str, tuple[Video, MediaFile | None]]:
    with store.sessions() as session:
        found = session.execute(select(Video, MediaFile).outerjoin(MediaFile)).all()
    return {video.id: (video, media) for video, media in found}


def test_every_file_gets_its_outcome_and_probe_columns(store, settings, corpus, media_dir):
    summary = run_validate(settings, workers=2)

    rows = _rows(store)
    for sample in MEDIA:
        video, media = rows[corpus[sample.name]]
        assert video.probe_status == sample.outcome, sample.name
        assert media.probed_sha256 == media.sha256 and media.probed_at is not None
        assert (settings.data_dir / media.path).exists()  # nothing is deleted
    assert rows["999"][0].probe_status == "missing_file"
    assert rows["998"][0].probe_status == "pending"  # not downloaded: untouched

    expected = {}
    for sample in MEDIA:
        expected[sample.outcome] = expected.get(sample.outcome, 0) + 1
    expected["missing_file"] = 1
    assert summary.counts == expected
    assert summary.probed == len(MEDIA) + 1

    video, media = rows[corpus["h264_aac.mp4"]]
    truth = ground_truth(media_dir / "h264_aac.mp4")
    assert (media.frame_count, media.width, media.height) == (
        int(truth["nb_read_frames"]),
        int(truth["width"]),
        int(truth["height"]),
    )
    assert (media.frame_count_method, media.video_codec, media.audio_codec, media.has_audio) == (
        "nb_frames",
        "h264",
        "aac",
        True,
    )
    assert media.avg_fps == 30 and media.duration_s == pytest.approx(4.0) and media.bitrate > 0
    assert video.probe_error_kind is None and video.probe_attempts == 1

    short, _ = rows[corpus["short.mp4"]]
    assert (short.probe_error_kind, short.probe_error) == ("too_short", "50 frames < 100")
    cut, cut_media = rows[corpus["faststart_cut.mp4"]]
    assert cut.probe_error_kind == "truncated" and "mdat" in cut.probe_error
    assert cut_media.frame_count is None
    assert rows[corpus["zero_bytes.mp4"]][0].probe_error_kind == "empty"
    assert rows[corpus["vp9.webm"]][1].frame_count_method == "packets"


def test_rerun_probes_nothing_and_new_thresholds_reclassify(store, settings, corpus):
    run_validate(settings, workers=2)
    before = {vid: media.probed_at for vid, (_, media) in _rows(store).items() if media}

    again = run_validate(settings, workers=2)
    assert (again.probed, again.requeued, again.reclassified) == (0, 0, 0)

    lower = run_validate(settings, min_frames=60, workers=2)
    assert (lower.probed, lower.reclassified) == (0, 1)
    rows = _rows(store)
    assert rows[corpus["vfr.mp4"]][0].probe_status == "valid"  # 80 frames
    assert rows[corpus["short.mp4"]][0].probe_status == "too_short"  # 50 frames
    assert rows[corpus["vfr.mp4"]][0].probe_error is None
    assert {vid: media.probed_at for vid, (_, media) in rows.items() if media} == before

    higher = run_validate(settings, min_frames=110, workers=2)
    assert (higher.probed, higher.reclassified) == (0, 2)  # vfr.mp4 (80), one_fps.mp4 (105)
    assert _rows(store)[corpus["one_fps.mp4"]][0].probe_status == "too_short"
    assert _rows(store)[corpus["bframes.mp4"]][0].probe_status == "valid"  # exactly 110


def test_files_that_appear_or_vanish_are_probed_again(store, settings, corpus, media_dir):
    run_validate(settings, workers=2)
    missing = settings.data_dir / _rows(store)["999"][1].path
    shutil.copyfile(media_dir / "mpeg4.avi", missing)  # the missing file arrived
    with store.transaction() as session:  # as its download would have recorded it
        session.get(MediaFile, "999").sha256 = hashlib.sha256(missing.read_bytes()).hexdigest()

    summary = run_validate(settings, workers=2)

    assert (summary.requeued, summary.probed) == (1, 1)
    video = _rows(store)["999"][0]
    assert (video.probe_status, video.probe_attempts) == ("valid", 2)

    missing.unlink()
    assert run_validate(settings, workers=1).counts["missing_file"] == 1


def test_a_data_folder_without_its_videos_folder_changes_nothing_until_it_is_made(store, settings, corpus):
    """The disk that holds the files not mounted (or the folder moved): validate marked every file missing,
    and ``download --retry-failed`` would then fetch the whole corpus again into a new folder."""
    run_validate(settings, workers=2)
    before = {vid: (video.probe_status, video.download_status) for vid, (video, _) in _rows(store).items()}
    recorded = sum(media is not None for _, media in _rows(store).values())
    videos = settings.data_dir / "videos"
    videos.rename(settings.data_dir / "unmounted")

    refused = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "validate", "--workers", "1"])
    assert refused.exit_code == 1 and "Traceback" not in refused.output, refused.output
    said = " ".join(refused.output.split())
    assert f"{videos} does not exist, yet the database records {recorded} downloaded files" in said, said
    with pytest.raises(ConfigError, match="is the disk that holds them mounted"):
        asyncio.run(download_pending(store, settings, retry_failed=True, cookies=[]))
    assert {vid: (video.probe_status, video.download_status) for vid, (video, _) in _rows(store).items()} == before
    assert not videos.exists()  # no new folder for the files to be fetched again into

    videos.mkdir()  # gone for good, as the error says to do: validate marks them missing
    assert run_validate(settings, workers=2).counts == {"missing_file": recorded}


def test_a_write_landing_while_the_file_is_probed_is_seen_by_the_next_run(store, settings, corpus, monkeypatch):
    """``probed_at`` was stamped when the probe was recorded: a write made while the file was hashed or
    probed was dated before it, and the file stayed ``valid`` for good."""
    video_id = corpus["h264_aac.mp4"]
    target = settings.data_dir / _rows(store)[video_id][1].path
    probe = inspection.probe

    def written_meanwhile(path, *args, **kwargs):
        found = probe(path, *args, **kwargs)
        if path == target and not _rows(store)[video_id][1].probed_sha256:
            zero_middle(target, 4096)  # after the hash and the probe read it, before the outcome lands
        return found

    monkeypatch.setattr(inspection, "probe", written_meanwhile)
    run_validate(settings, workers=1)
    assert _rows(store)[video_id][0].probe_status == "valid"  # what was read was the download's bytes

    again = run_validate(settings, workers=1)

    video, media = _rows(store)[video_id]
    assert again.requeued == 1 and (video.probe_status, video.probe_error_kind) == ("corrupt", "changed")
    assert media.probed_sha256 != media.sha256


@pytest.mark.parametrize("damage", ["zeroed_in_place", "swapped"])
def test_a_file_changed_since_its_download_is_corrupt_and_keeps_the_downloads_sha256(
    any_db_url, tmp_path, media_dir, damage
):
    """8 KB zeroed in the middle (same size) or another video's file copied over it: the bytes are not
    what the site served, so the row is ``corrupt`` (``changed``, which ``download --retry-failed``
    fetches again), never ``valid``, and ``sha256`` and ``size_bytes`` stay the download's record."""
    settings = Settings(data_dir=tmp_path / "data", db_url=any_db_url)
    upgrade_database(settings)
    store = open_store(settings)
    try:
        with store.transaction() as session:
            target = add_download(session, settings.data_dir, "1", media_dir / "h264_aac.mp4")
            other = add_download(session, settings.data_dir, "2", media_dir / "bframes.mp4")
        assert run_validate(settings, workers=1).counts == {"valid": 2}
        downloaded = _rows(store)["1"][1]
        if damage == "swapped":
            shutil.copyfile(other, target)
            date_now(target)
        else:
            zero_middle(target, 8192)
            assert target.stat().st_size == downloaded.size_bytes

        summary = run_validate(settings, workers=1)

        video, media = _rows(store)["1"]
        assert (video.probe_status, video.probe_error_kind) == ("corrupt", "changed")
        assert video.probe_status in DAMAGED_PROBES
        assert (media.sha256, media.size_bytes) == (downloaded.sha256, downloaded.size_bytes)
        assert media.probed_sha256 == hashlib.sha256(target.read_bytes()).hexdigest() != media.sha256
        assert (media.video_codec, media.frame_count) == (None, None), "what a probe found of other bytes"
        assert (summary.counts, summary.reasons) == ({"corrupt": 1, "valid": 1}, {"changed": 1})
        again = run_validate(settings, workers=1)
        assert (again.requeued, again.probed, again.counts) == (0, 0, summary.counts), "hashed on every run"

        shutil.copyfile(media_dir / "h264_aac.mp4", target)  # the downloaded bytes back (a backup)
        date_now(target)
        restored = run_validate(settings, workers=1)
        assert (restored.probed, restored.counts) == (1, {"valid": 2})
        assert _rows(store)["1"][1].probed_sha256 == downloaded.sha256
    finally:
        store.dispose()


def test_a_new_download_of_a_row_is_probed_again(store, settings, corpus, media_dir):
    """A download that writes new bytes and their sha256 and size: validated as they are, and the
    download's sha256 stays, even where the file's date says nothing (one kept from the server)."""
    run_validate(settings, workers=2)
    video_id = corpus["h264_aac.mp4"]
    path = settings.data_dir / _rows(store)[video_id][1].path
    shutil.copyfile(media_dir / "bframes.mp4", path)
    os.utime(path, (0, 0))
    served = hashlib.sha256(path.read_bytes()).hexdigest()
    with store.transaction() as session:
        media = session.get(MediaFile, video_id)
        media.sha256, media.size_bytes = served, path.stat().st_size

    summary = run_validate(settings, workers=2)

    assert (summary.requeued, summary.probed) == (1, 1)
    video, media = _rows(store)[video_id]
    assert (video.probe_status, media.frame_count) == ("valid", 110)
    assert media.sha256 == media.probed_sha256 == served


def test_deep_decodes_every_file_once_and_catches_scrambled_streams(store, settings, corpus):
    plain = run_validate(settings, workers=2)
    assert _rows(store)[corpus["scrambled_payload.mp4"]][0].probe_status == "valid"

    deep = run_validate(settings, deep=True, workers=2)

    rows = _rows(store)
    scrambled = rows[corpus["scrambled_payload.mp4"]][0]
    assert (scrambled.probe_status, scrambled.probe_error_kind) == ("corrupt", "decode_error")
    decoded = [
        name
        for name in corpus
        if name in {s.name for s in MEDIA} and rows[corpus[name]][1].frame_count_method == "decode"
    ]
    measured = [
        s.name
        for s in MEDIA
        if s.outcome != "corrupt" and s.outcome != "no_video" and s.name != "scrambled_payload.mp4"
    ]
    assert sorted(decoded) == sorted(measured)
    assert rows[corpus["bframes.mp4"]][1].frame_count == 110
    assert deep.counts["valid"] == plain.counts["valid"] - 1
    assert run_validate(settings, deep=True, workers=2).probed == 0


def test_an_interrupted_claim_is_taken_over_after_its_lease(store, settings, media_dir):
    with store.transaction() as session:
        add_download(session, settings.data_dir, "1", media_dir / "h264_aac.mp4")
    past = utcnow() - timedelta(hours=1)
    assert claim(store, "probe", 10, now=past, lease_s=60) == ["1"]  # a worker that died
    summary = run_validate(settings, workers=1)
    assert summary.counts == {"valid": 1}


def test_claims_of_a_killed_validate_on_this_host_are_taken_back_at_once(store, settings, media_dir):
    """kill -9 leaves rows claimed for the lease (33 minutes with --deep): a rerun on the same host takes
    back the claims of processes that no longer exist instead of finishing without them."""
    with store.transaction() as session:
        add_download(session, settings.data_dir, "1", media_dir / "h264_aac.mp4")
    dead = f"{socket.gethostname()}:999999999"  # no such pid
    assert claim(store, "probe", 10, worker=dead, lease_s=3_600) == ["1"]
    assert run_validate(settings, workers=1).counts == {"valid": 1}


def test_bad_options_are_config_errors(settings):
    with pytest.raises(ConfigError):
        run_validate(settings, min_frames=0)
    with pytest.raises(ConfigError):
        run_validate(settings, workers=0)


@pytest.mark.postgres
def test_validate_on_postgres(pg_url, tmp_path, media_dir):
    settings = Settings(data_dir=tmp_path / "data", db_url=pg_url)
    engine = db.make_engine(pg_url)
    db.upgrade(engine)
    engine.dispose()
    store = open_store(settings)
    try:
        with store.transaction() as session:
            for index, name in enumerate(["h264_aac.mp4", "short.mp4", "garbage.mp4"]):
                add_download(session, settings.data_dir, str(index + 1), media_dir / name)
        summary = run_validate(settings, workers=2)
        assert summary.counts == {"corrupt": 1, "too_short": 1, "valid": 1}
        assert run_validate(settings, min_frames=50, workers=2).counts == {"corrupt": 1, "valid": 2}
    finally:
        store.dispose()


def test_cli_prints_a_summary_table_and_json(store, settings, media_dir):
    with store.transaction() as session:
        add_download(session, settings.data_dir, "1", media_dir / "h264_aac.mp4")
        add_download(session, settings.data_dir, "2", media_dir / "garbage.mp4")
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir)]

    table = runner.invoke(app, [*base, "validate", "--workers", "1"])
    assert table.exit_code == 0, table.output
    assert "valid" in table.output and "corrupt" in table.output
    assert "1 files corrupt or missing: `corpus download --retry-failed`" in table.output

    as_json = runner.invoke(app, [*base, "validate", "--min-frames", "200", "--json"])
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.output)
    assert summary["counts"] == {"corrupt": 1, "too_short": 1}
    assert (summary["probed"], summary["reclassified"]) == (0, 1)

    bad = runner.invoke(app, [*base, "validate", "--min-frames", "0"])  # outside the range --help shows
    assert bad.exit_code == 2 and "min-frames" in bad.output


def test_a_probe_past_its_time_is_probed_again_not_taken_for_a_corrupt_file(
    store, settings, corpus, media_dir, monkeypatch
):
    """A busy machine makes a real ffprobe outrun its timeout: the file is not ``corrupt`` (which
    ``download --retry-failed`` fetches again, from a post maybe deleted since), and the next run, on
    an idle machine, finds it valid."""
    video_id = corpus["h264_aac.mp4"]
    real_probe = inspection.probe
    monkeypatch.setattr(inspection, "probe", lambda path: real_probe(path, timeout=0.0001, in_process=False))
    run_validate(settings, workers=1)
    video = _rows(store)[video_id][0]
    assert (video.probe_status, video.probe_error_kind) == ("error", "timeout")
    assert video.probe_status not in DAMAGED_PROBES

    monkeypatch.setattr(inspection, "probe", real_probe)
    summary = run_validate(settings, workers=1)
    assert summary.requeued >= 1 and _rows(store)[video_id][0].probe_status == "valid"


class _StopAfterFirstFile:
    """A progress display that is interrupted (Ctrl-C) once the first file is recorded."""

    def add_task(self, description: str, total: int) -> int:
        self.total = total
        return 0

    def advance(self, task: int) -> None:
        raise KeyboardInterrupt


def test_files_changed_since_their_probe_go_back_to_the_queue_a_claim_at_a_time(store, settings, corpus):
    """Every file restored with a new mtime: each is probed again, but the rows wait for their turn with
    their outcome, so an export during the run (or after a Ctrl-C) still finds them; only the claim in
    hand and the batch requeued for it are out of the exportable set."""
    run_validate(settings, workers=1)
    valid = {vid for vid, (video, _) in _rows(store).items() if video.probe_status == "valid"}
    later = time.time() + 60
    for _, media in _rows(store).values():
        if media is not None and (settings.data_dir / media.path).is_file():
            os.utime(settings.data_dir / media.path, (later, later))
    interrupted = _StopAfterFirstFile()

    with pytest.raises(KeyboardInterrupt):
        run_validate(settings, workers=1, progress=interrupted)

    still_valid = {vid for vid, (video, _) in _rows(store).items() if video.probe_status == "valid"}
    assert interrupted.total >= len(valid) and len(valid) - len(still_valid) <= 2  # one claim's worth
    summary = run_validate(settings, workers=1)
    assert (
        summary.requeued >= len(valid) - 2
        and {vid for vid, (video, _) in _rows(store).items() if video.probe_status == "valid"} == valid
    )


def test_a_requeued_batch_another_run_takes_first_does_not_end_this_one_early(store, settings, corpus, monkeypatch):
    """Another validate claims the batch this one just put back: this one requeues the next instead of
    stopping with the rest of the changed files neither probed nor queued; and a row the other run
    holds is never taken from it."""
    run_validate(settings, workers=1)
    later = time.time() + 60
    for _, media in _rows(store).values():
        if media is not None and (settings.data_dir / media.path).is_file():
            os.utime(settings.data_dir / media.path, (later, later))
    taken: list[str] = []

    def requeue_then_lose_the_race(store_, video_ids):
        requeue_probes(store_, video_ids)
        if not taken:  # the other run is quicker, once
            taken.extend(claim(store_, "probe", len(video_ids), worker="otherhost:1:v", lease_s=3600))
            requeue_probes(store_, taken)  # a requeue by a run that listed them earlier: theirs stay theirs

    monkeypatch.setattr(validate_run, "requeue_probes", requeue_then_lose_the_race)
    summary = run_validate(settings, workers=1)

    assert taken and summary.probed == summary.requeued - len(taken)
    statuses = {vid: video.probe_status for vid, (video, _) in _rows(store).items()}
    assert {statuses[vid] for vid in taken} == {"claimed"}
    assert "pending" not in {status for vid, status in statuses.items() if vid != "998"}
