"""What each replica media file is (:class:`MediaSpec`) and how the catalog draws one.

The specs are the truth the media generator (:mod:`.media`) renders and ffprobe must confirm; the signal
properties (luma, the tone's pitch) come from :mod:`.signals`.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

from .signals import luma_for, tone_hz

VFR_SOURCE_FPS, VFR_SOURCE_FRAMES = 30, 240  # the VFR file is cut from 8 s drawn at 30 fps


@dataclass(frozen=True)
class MediaSpec:
    """The truth about one generated file: what ffprobe must report, and how it is drawn.

    ``luma`` is the frames' background brightness (the visual signal's property); ``u``/``v`` its hue;
    ``box_speed`` the moving box's speed in px/s; ``audio_hz`` the tone (0 = silent track; the audio
    signal's property).
    """

    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    has_audio: bool
    codec: str  # "h264" | "hevc" (ffprobe's codec_name)
    vfr: bool
    luma: int
    u: int
    v: int
    box_speed: int
    audio_hz: int
    salt: int  # makes every file unique even when all else is equal

    @property
    def cache_key(self) -> str:
        """Hash of the generation spec: the media cache file name, so reruns reuse files."""
        payload = json.dumps({"generator": 1, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    @property
    def tiktok_codec(self) -> str:
        return "h264" if self.codec == "h264" else "h265_hvc1"


MEDIA_SCALES = (1, 2, 4, 8)  # each divides every drawn width and height into an even number (H.264 4:2:0)


def draw_media_spec(rng: random.Random, *, vfr: bool, visual: float, audio: float | None, scale: int = 1) -> MediaSpec:
    """Realistic variety: sizes, rates, lengths, codecs, silent files, short ones, one VFR file.

    Most files are short (cheap to encode); a few are long. HEVC ones are short and 25 fps
    because libx265 is slow. ``visual`` sets the luma (:func:`.signals.luma_for`); ``audio``, the
    post's audio component when the audio signal is on, sets the pitch of a file's audio track
    (:func:`.signals.tone_hz`); a file without one stays so. The draws are the same either way, and
    at every ``scale``, which only divides the drawn width and height (:data:`MEDIA_SCALES`).
    """
    roll = rng.random()
    width, height = (576, 1024) if roll < 0.6 else (720, 1280) if roll < 0.9 else rng.choice([(1280, 720), (1024, 576)])
    fps = rng.choices([30, 25, 24, 60], [45, 25, 20, 10])[0]
    roll = rng.random()
    if roll < 0.80:
        duration = rng.uniform(5, 9)
    elif roll < 0.94:
        duration = rng.uniform(9, 20)
    else:
        duration = rng.uniform(20, 65)
    if fps == 60:
        duration = min(duration, 8)
    codec = "hevc" if rng.random() < 0.03 else "h264"
    if codec == "hevc":
        width, height, fps, duration = 576, 1024, 25, rng.uniform(5, 6)
    roll = rng.random()
    if roll < 0.02:  # slideshow-like: 1 fps, far under 100 frames
        fps, duration = 1, rng.uniform(10, 40)
    elif roll < 0.04:  # very short clip
        fps, duration = 30, rng.uniform(2, 3)
    if vfr:
        fps, duration, codec = VFR_SOURCE_FPS, VFR_SOURCE_FRAMES / VFR_SOURCE_FPS, "h264"
    frames = max(1, round(duration * fps))
    if vfr:
        frames, duration = vfr_frames_and_duration(frames)
    else:
        duration = frames / fps
    has_audio = rng.random() < 0.85
    return MediaSpec(
        width=width // scale,
        height=height // scale,
        fps=frames / duration if vfr else float(fps),
        frames=frames,
        duration_s=round(duration, 6),
        has_audio=has_audio,
        codec=codec,
        vfr=vfr,
        luma=luma_for(visual),
        u=rng.randint(98, 158),
        v=rng.randint(98, 158),
        box_speed=rng.randint(40, 400),
        audio_hz=_tone(rng.choice([0, 220, 330, 440, 550, 660]), audio) if has_audio else 0,
        salt=rng.getrandbits(31),
    )


def _tone(drawn_hz: int, audio: float | None) -> int:
    """The drawn tone (0 Hz: a silent track), or the audio signal's pitch instead of it.

    The signal's pitch replaces silent tracks too: left silent, they would hide the signal from ~15% more
    posts (a quarter to a third of them in all), and what an audio model can reach would fall well under
    what the audio component itself tells. Files without an audio stream stay without one.
    """
    return drawn_hz if audio is None else tone_hz(audio)


def vfr_frames_and_duration(source_frames: int) -> tuple[int, float]:
    """What the VFR file's select filter keeps (all of the first half, every 3rd frame after) and
    its stream duration (up to the end of the last kept frame)."""
    half = source_frames // 2
    kept = [n for n in range(source_frames) if n < half or n % 3 == 0]
    return len(kept), (kept[-1] + 1) / VFR_SOURCE_FPS
