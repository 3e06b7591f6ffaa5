"""``audio``: the soundtrack decoded by TorchCodec (mono, 16 kHz) and summarised with librosa.

Log-mel band means and spreads (they move with a tone's pitch and timbre), spectral centroid,
loudness (dBFS), onset rate, silence fraction, has_audio. A video without an audio stream gets
``has_audio = 0`` and NaN elsewhere; one whose audio cannot be decoded gets NaN throughout.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
from filelock import FileLock

from .._files import media_path
from .._waits import ordered_map
from ..errors import MediaError
from .columns import named, numeric

VERSION = 1
SAMPLE_RATE = 16_000
MEL_BANDS = 32
FLOOR_DB = -100.0  # digital silence: the loudness of an all-zero track
SILENCE_DB = -60.0  # a frame quieter than this (dBFS RMS) counts as silent
MAX_SAMPLE = 1_000.0  # 60 dB past full scale: no sound, a track's garbage
# Onsets: peaks of librosa's spectral flux (mean dB rise per frame) this high, absolute rather than
# normalised per track, so a steady tone has none instead of peaks made of its own noise.
ONSET_DELTA_DB = 2.0
MEL_COLUMNS = [f"mel_mean_{band:02d}" for band in range(MEL_BANDS)] + [
    f"mel_std_{band:02d}" for band in range(MEL_BANDS)
]
COLUMNS = ["has_audio", "loudness_db", "silence_fraction", "onset_rate", "centroid_hz", *MEL_COLUMNS]
# Held while a process first runs librosa: shared by all of this user's processes (see compile_librosa).
COMPILE_LOCK = Path(tempfile.gettempdir()) / f"tiktok-corpus-librosa-{os.getuid()}.lock"


def settings(options) -> dict:
    return {"version": VERSION, "sample_rate": SAMPLE_RATE, "mel_bands": MEL_BANDS, "onset_delta_db": ONSET_DELTA_DB}


class NoAudio(Exception):
    """The file has no audio stream."""


def decode_audio(path: Path) -> np.ndarray:
    """The first audio stream as mono float32 at :data:`SAMPLE_RATE`; :class:`NoAudio` when there is none."""
    from torchcodec.decoders import AudioDecoder

    try:
        decoder = AudioDecoder(media_path(path), sample_rate=SAMPLE_RATE, num_channels=1)
    except ValueError as exc:  # TorchCodec's answer to a file without an audio stream
        raise NoAudio(str(path)) from exc
    return decoder.get_all_samples().data.mean(dim=0).numpy()


@functools.cache
def require_decoder() -> None:
    """Decode a tenth of a second of silence made here, once, before any file.

    TorchCodec raises the same RuntimeError for a track it cannot read and for FFmpeg libraries it cannot
    load (FFmpeg missing, torchcodec built for another torch): per file, the second would pass every row
    as an undecodable track, NaN, and the table would be cached as if measured."""
    from torchcodec.decoders import AudioDecoder

    silence = io.BytesIO()
    with wave.open(silence, "wb") as track:
        track.setnchannels(1)
        track.setsampwidth(2)
        track.setframerate(SAMPLE_RATE)
        track.writeframes(bytes(2 * SAMPLE_RATE // 10))
    try:
        AudioDecoder(silence.getvalue(), sample_rate=SAMPLE_RATE, num_channels=1).get_all_samples()
    except RuntimeError as exc:
        raise MediaError(
            f"TorchCodec cannot decode audio on this machine ({exc}); the audio table needs FFmpeg's libraries "
            "and a torchcodec release built for the installed torch",
            kind="no_decoder",
        ) from exc


def describe_audio(samples: np.ndarray) -> dict[str, float]:
    """The summary of one mono track at :data:`SAMPLE_RATE` (NaN for what an empty track lacks)."""
    if samples.size == 0:
        return {"has_audio": 1.0}
    rms = librosa.feature.rms(y=samples)[0]
    frame_db = 20 * np.log10(np.maximum(rms, 10 ** (FLOOR_DB / 20)))
    overall = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=samples, sr=SAMPLE_RATE, n_mels=MEL_BANDS), ref=1.0)
    centroid = librosa.feature.spectral_centroid(y=samples, sr=SAMPLE_RATE)[0]
    sounding = frame_db[: len(centroid)] >= SILENCE_DB
    onsets = librosa.onset.onset_detect(y=samples, sr=SAMPLE_RATE, normalize=False, delta=ONSET_DELTA_DB)
    return {
        "has_audio": 1.0,
        "loudness_db": max(FLOOR_DB, 20 * np.log10(max(overall, 1e-12))),
        "silence_fraction": float(np.mean(frame_db < SILENCE_DB)),
        "onset_rate": len(onsets) / (samples.size / SAMPLE_RATE),
        "centroid_hz": float(np.mean(centroid[sounding])) if sounding.any() else np.nan,
        **dict(zip(MEL_COLUMNS, [*mel.mean(axis=1), *mel.std(axis=1)])),
    }


@functools.cache
def compile_librosa() -> None:
    """Run librosa once, under :data:`COMPILE_LOCK`, before this process's threads do.

    librosa's numba code compiles on first use and is cached on disk. numba writes a gufunc's cache as
    two files, and two processes compiling at once can leave the pair from different processes: every
    later load of it then segfaults (numba issue 10128), this run's and the next ones'. Under the lock
    one process compiles and writes while the others wait, then load what it wrote.
    """
    with FileLock(COMPILE_LOCK):
        describe_audio(np.sin(np.linspace(0, 880 * np.pi, SAMPLE_RATE, dtype=np.float32)))


def _video_audio(path: Path, has_audio: float) -> dict[str, float]:
    if has_audio == 0:
        return {"has_audio": 0.0}
    try:
        samples = decode_audio(path)
    except NoAudio:  # TorchCodec says so of a broken file too: where the probe found a track, unknown
        return {} if has_audio == 1 else {"has_audio": 0.0}
    except RuntimeError:  # an undecodable track: unknown, not absent
        return {}
    # A float PCM track can hold NaN, inf, or values far past full scale that overflow librosa's sums:
    # unknown, as an undecodable track (a sound never passes full scale, 1, by a thousandfold).
    if not (np.isfinite(samples).all() and np.abs(samples, dtype=np.float64).max(initial=0.0) <= MAX_SAMPLE):
        return {}
    return describe_audio(samples)


def compute(export, options, advance: Callable[[int], None]) -> pd.DataFrame:
    paths = export.media_files()
    declared = numeric(export.table, "has_audio").to_numpy()
    rows: list[dict[str, float]] = []
    require_decoder()
    compile_librosa()
    with ThreadPoolExecutor(options.workers or os.cpu_count() or 1) as pool:
        for summary in ordered_map(pool, _video_audio, paths, declared):
            rows.append(summary)
            advance(1)
    return named(pd.DataFrame(rows, columns=COLUMNS), "audio")
