"""The audio and video tables on the 24-row sound export: real ffmpeg files, TorchCodec, librosa, and
a random-init R(2+1)D-18 on 32 px proxies (1 clip of 4 frames: a few seconds on two cores)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading

import numpy as np
import pandas as pd
import pytest
from filelock import FileLock, Timeout

from tests.features.conftest import HIGH_HZ, LOW_HZ, MUTE_ROW, SILENT_ROW
from tiktok_corpus.errors import MediaError
from tiktok_corpus.features import FeatureOptions, extract_features, feature_provenance, load_features
from tiktok_corpus.features import audio as audio_modality

TINY_VIDEO = {"clips": 2, "frames": 4, "size": 32, "progress": False}


@pytest.fixture(scope="module")
def audio(sound_export_source) -> pd.DataFrame:
    return load_features(sound_export_source, ["audio"], FeatureOptions(modalities=("audio",), progress=False))


def test_audio_separates_two_pitches(audio, sound_export_source):
    viral = pd.read_parquet(sound_export_source / "videos.parquet")["is_viral"].to_numpy() == 1
    tones = np.ones(len(audio), bool)
    tones[[SILENT_ROW, MUTE_ROW]] = False
    centroid = audio["audio.centroid_hz"]
    assert centroid[tones & ~viral].between(LOW_HZ * 0.8, LOW_HZ * 1.25).all()
    assert centroid[tones & viral].between(HIGH_HZ * 0.8, HIGH_HZ * 1.25).all()
    # A log-mel band moves with the pitch too: some band is louder for every high tone than every low one.
    mel = audio.filter(like="audio.mel_mean_")
    assert (mel[tones & viral].min() > mel[tones & ~viral].max()).any()
    assert not audio[tones].isna().any().any()


def test_audio_tells_loud_from_silent_from_absent(audio):
    tone, silent, mute = audio.iloc[0], audio.iloc[SILENT_ROW], audio.iloc[MUTE_ROW]
    assert tone["audio.loudness_db"] > -30 and tone["audio.silence_fraction"] == 0
    assert (
        silent["audio.loudness_db"] <= -90 and silent["audio.silence_fraction"] == 1 and silent["audio.has_audio"] == 1
    )
    assert mute["audio.has_audio"] == 0 and mute.drop("audio.has_audio").isna().all()


def test_a_float_track_holding_nan_is_unknown_not_the_end_of_the_table(tmp_path):
    """A float PCM soundtrack can decode to NaN or inf: librosa's error escaped the undecodable case and
    ended the audio table of the whole export."""
    samples = np.sin(np.linspace(0, 440 * 2 * np.pi, 16_000, dtype=np.float32))
    samples[[100, 200]] = [np.nan, np.inf]
    raw, video = tmp_path / "track.f32", tmp_path / "float.mov"
    raw.write_bytes(samples.tobytes())
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "f32le", "-ar", "16000", "-ac", "1", "-i", str(raw), "-c:a", "pcm_f32le"]
        + [str(video)],
        check=True,
    )
    assert not np.isfinite(audio_modality.decode_audio(video)).all()
    assert audio_modality._video_audio(video, 1.0) == {}  # NaN throughout, as an undecodable track
    # Finite but far past full scale: librosa's sums overflowed (an error, or 397 dB stored).
    raw.write_bytes((np.sin(np.linspace(0, 440 * 2 * np.pi, 16_000, dtype=np.float32)) * 3e38).astype("<f4").tobytes())
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", "16000", "-ac", "1", "-i", str(raw), "-c:a", "pcm_f32le"]
        + [str(video)],
        check=True,
    )
    assert np.isfinite(audio_modality.decode_audio(video)).all()
    assert audio_modality._video_audio(video, 1.0) == {}


def test_a_file_whose_track_the_decoder_cannot_find_is_unknown_where_the_probe_found_one(tmp_path):
    """TorchCodec finds "no audio stream" in a file cut inside its index too (the video's track whole, the
    sound's not): the probe's track was then recorded as absent (has_audio 0), not unknown."""
    whole, cut = tmp_path / "whole.mp4", tmp_path / "cut.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-f", "lavfi", "-i", "sine"]
        + ["-t", "20", "-c:v", "libx264", "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(whole)],
        check=True,
    )
    for size in range(500, 20_000, 250):  # where the cut leaves the sound's track out of the index
        cut.write_bytes(whole.read_bytes()[:size])
        try:
            audio_modality.decode_audio(cut)
        except audio_modality.NoAudio:
            break
        except RuntimeError:  # no container libav can open: undecodable, as before
            continue
    else:
        pytest.fail("no cut of the file left libav a container without its sound")
    assert audio_modality._video_audio(cut, 1.0) == {}
    assert audio_modality._video_audio(cut, float("nan")) == {"has_audio": 0.0}  # no probe: the decoder's word


def test_a_decoder_that_cannot_load_stops_the_table_and_caches_nothing(sound_export, monkeypatch):
    """TorchCodec without FFmpeg's libraries (or built for another torch) raises the RuntimeError an
    undecodable track raises: taken per file, every row was NaN, and the table was cached as measured
    and read back after the fix. A missing library cannot be made here: its error is raised in its place."""
    import torchcodec.decoders

    class Unloadable:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Could not load libtorchcodec. Likely causes: FFmpeg is not properly installed")

    options = FeatureOptions(modalities=("audio",), progress=False)
    audio_modality.require_decoder.cache_clear()  # as in a new process
    monkeypatch.setattr(torchcodec.decoders, "AudioDecoder", Unloadable)
    with pytest.raises(MediaError, match="TorchCodec cannot decode audio on this machine .*Could not load") as caught:
        extract_features(sound_export, options)
    assert caught.value.kind == "no_decoder"
    monkeypatch.undo()
    audio_modality.require_decoder.cache_clear()
    measured = load_features(sound_export, ["audio"], options)
    assert measured["audio.centroid_hz"].notna().sum() == len(measured) - 2  # all but the silent and mute rows


def test_a_process_runs_librosa_first_under_the_lock_every_process_takes(sound_export, monkeypatch):
    """Two processes compiling librosa's numba code at once can leave its disk cache crossed, and every
    later load segfaults: the first run holds a lock that another handle cannot take (as another process
    could not), and comes before the threads that summarise the videos."""
    calls: list[tuple[bool, bool]] = []
    describe = audio_modality.describe_audio

    def noting_the_lock(samples):
        probe = FileLock(audio_modality.COMPILE_LOCK)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            locked = True
        else:
            probe.release()
            locked = False
        calls.append((locked, threading.current_thread() is threading.main_thread()))
        return describe(samples)

    audio_modality.compile_librosa.cache_clear()  # as in a new process
    monkeypatch.setattr(audio_modality, "describe_audio", noting_the_lock)
    extract_features(sound_export, FeatureOptions(modalities=("audio",), progress=False))
    assert len(calls) > 1 and calls[0] == (True, True)


def test_video_embedding_with_random_weights_is_flagged(sound_export):
    options = FeatureOptions(modalities=("video",), **TINY_VIDEO)
    summary = extract_features(sound_export, options)
    frame = load_features(sound_export, ["video"], options)
    assert frame.shape == (24, 512 + 7) and frame.columns[17] == "video.emb_017"
    assert not frame.isna().any().any() and frame.std().gt(0).any()
    assert summary.random_init and summary.results[0].random_init
    assert feature_provenance(sound_export, ["video"], options)["video"]["random_init"] is True
    sidecar = json.loads(summary.results[0].cache_file.with_suffix(".json").read_text())
    assert sidecar["random_init"] is True and sidecar["settings"]["weights"] == "none"
    # Built from the trainer's proxies, shared with it under EXPORT/cache.
    assert list((sound_export / "cache").glob("proxies-*-32px/*.mp4"))


def test_a_ctrl_c_in_the_video_embedding_keeps_its_rows_and_the_next_run_goes_on_from_them(sound_export, monkeypatch):
    """At the paper's size the embedding takes hours on a CPU, and a Ctrl-C lost all of it. Its rows are kept
    every ``ROWS_PER_PART`` videos: the next run embeds only the others, into the table a run without a
    stop makes, and then removes them."""
    from tiktok_corpus.features import video
    from tiktok_corpus.features.cache import TableParts

    monkeypatch.setattr(video, "ROWS_PER_PART", 4)
    options = FeatureOptions(modalities=("video",), **TINY_VIDEO, batch_size=4)  # 2 clips: 2 videos a batch
    keep = TableParts.save
    saved: list[int] = []

    def keep_then_stop(parts, block):
        kept = keep(parts, block)
        saved.append(len(block))
        if len(saved) == 3:
            raise KeyboardInterrupt
        return kept

    monkeypatch.setattr(TableParts, "save", keep_then_stop)
    with pytest.raises(KeyboardInterrupt):
        extract_features(sound_export, options)
    [parts_dir] = (sound_export / "features").glob("video-*.parts")
    assert sorted(path.name for path in parts_dir.iterdir()) == ["rows-0-4.npy", "rows-4-8.npy", "rows-8-12.npy"]

    monkeypatch.setattr(TableParts, "save", keep)
    embedded: list = []
    batches = video._batches
    monkeypatch.setattr(
        video, "_batches", lambda pool, proxies, o: batches(pool, embedded.extend(proxies) or proxies, o)
    )
    resumed = load_features(sound_export, ["video"], options)
    assert len(embedded) == 24 - 12 and not parts_dir.exists()

    shutil.rmtree(sound_export / "features")
    pd.testing.assert_frame_equal(resumed, load_features(sound_export, ["video"], options))


def test_frame_statistics_read_brightness_colour_and_motion():
    """Two clips of 4 frames at 8x8: a still grey one and a red one that flickers dark/bright (its last
    frame padding, so only 3 frames count)."""
    import torch

    from tiktok_corpus.features.video import FRAME_STATISTICS, frame_statistics

    clips = torch.zeros(2, 3, 4, 8, 8, dtype=torch.uint8)
    clips[0] = 128
    clips[1, 0, :3] = torch.tensor([255, 55, 255], dtype=torch.uint8).view(3, 1, 1)
    stats = dict(zip(FRAME_STATISTICS, frame_statistics(clips, torch.tensor([4, 3])).T))

    assert stats["luma_mean"][0] == pytest.approx(128 / 255, abs=1e-3) and stats["motion"][0] == 0
    assert stats["red_mean"][1] == pytest.approx((255 + 55 + 255) / 3 / 255, abs=1e-3)
    assert stats["green_mean"][1] == 0 and stats["colourfulness"][1] > stats["colourfulness"][0]
    assert stats["motion"][1] == pytest.approx(0.299 * 200 / 255, abs=1e-3)
