"""The generated files are what the catalog declares: ffprobe and real decoding agree with the truth."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from fractions import Fraction

import pytest

from tiktok_corpus.errors import ConfigError
from tiktok_corpus.replica import Replica, ReplicaConfig
from tiktok_corpus.replica.catalog import build_catalog


def probe(path, count_frames=False):
    args = ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)]
    if count_frames:
        args.insert(1, "-count_frames")
    return {s["codec_type"]: s for s in json.loads(subprocess.check_output(args))["streams"]}


def variety_sample(videos, extra=24):
    """One file of every (codec, size, rate, audio, vfr) class, plus the first ``extra`` others."""
    classes = {}
    for video in videos:
        m = video.media
        classes.setdefault((m.codec, m.width, m.height, m.fps, m.has_audio, m.vfr, m.frames < 100), video)
    picked = list(classes.values())
    return picked + [v for v in videos if v not in picked][:extra]


def test_every_kind_of_file_matches_its_declared_truth(replica):
    videos = variety_sample(replica.catalog.playable())
    with ThreadPoolExecutor(2) as pool:
        probes = list(pool.map(lambda v: probe(replica.media_path(v.id)), videos))
    for video, streams in zip(videos, probes):
        truth, stream = video.media, streams["video"]
        assert (stream["codec_name"], stream["width"], stream["height"]) == (truth.codec, truth.width, truth.height), (
            video.id
        )
        assert int(stream["nb_frames"]) == truth.frames, video.id
        assert float(stream["duration"]) == pytest.approx(truth.duration_s, abs=0.05), video.id
        assert ("audio" in streams) == truth.has_audio, video.id
        if not truth.vfr:
            assert Fraction(stream["avg_frame_rate"]) == pytest.approx(truth.fps, rel=0.01), video.id
        assert replica.media_path(video.id).read_bytes()[4:8] == b"ftyp"


def test_decoded_frame_counts_vfr_and_short_files(replica):
    media = [v for v in replica.catalog.playable()]
    picks = [
        next(v for v in media if v.media.vfr),
        next(v for v in media if v.media.codec == "hevc"),
        next(v for v in media if v.media.frames < 100),
        next(v for v in media if v.media.fps == 60),
    ]
    for video in picks:
        stream = probe(replica.media_path(video.id), count_frames=True)["video"]
        assert int(stream["nb_read_frames"]) == video.media.frames
    vfr = probe(replica.media_path(picks[0].id))["video"]
    assert Fraction(vfr["r_frame_rate"]) != Fraction(vfr["avg_frame_rate"])


def test_brightness_is_the_declared_luma(replica):
    for video in replica.catalog.playable()[:4]:
        out = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "info",
                "-i",
                str(replica.media_path(video.id)),
                "-vf",
                "signalstats,metadata=print:key=lavfi.signalstats.YAVG",
                "-frames:v",
                "1",
                "-f",
                "null",
                "-",
            ],
            capture_output=True,
            text=True,
        ).stderr
        mean_luma = float(re.search(r"YAVG=([\d.]+)", out).group(1))
        assert mean_luma == pytest.approx(video.media.luma, abs=4)


def test_a_media_scale_divides_every_size_and_keeps_the_rest_of_the_catalog(tmp_path):
    """Small files for quick runs: the same posts and draws, each width and height divided, and the
    served file is what the smaller declaration says."""
    full, quarter = build_catalog(60, 3), build_catalog(60, 3, media_scale=4)
    assert [v.id for v in quarter.videos] == [v.id for v in full.videos]
    for big, small in zip(full.playable(), quarter.playable()):
        assert (small.media.width * 4, small.media.height * 4) == (big.media.width, big.media.height)
        assert replace(small.media, width=big.media.width, height=big.media.height) == big.media
    with pytest.raises(ConfigError, match="media scale must be one of 1, 2, 4, 8, got 3"):
        build_catalog(10, 0, media_scale=3)
    with Replica(ReplicaConfig(videos=6, seed=3, media_scale=4, media_cache=tmp_path)) as replica:
        video = replica.catalog.playable()[0]
        stream = probe(replica.media_path(video.id))["video"]
        truth = build_catalog(6, 3).by_id[video.id].media
        assert (stream["width"], stream["height"]) == (truth.width // 4, truth.height // 4)
