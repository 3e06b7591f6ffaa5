"""One latent signal per modality: what ties a replica post's observable properties to its appeal (#16).

Every post has a latent ``appeal`` that drives its engagement counts (and so the export's labels). Each
modality ``m`` given a strength ``s_m`` in (0, 1] gets its own standard-normal component ``z_m``,
independent of the others, and

    appeal = sum_m c_m * z_m + c_0 * eps,   c_m = s_m / sqrt(max(1, sum_m s_m**2)),   c_0 = sqrt(1 - sum_m c_m**2)

(``eps`` standard normal, independent of every ``z``): a component's share of appeal is its strength, and
strengths whose squares add up to 1 or more explain appeal fully. Each modality's observable property is a
deterministic monotone function of its own ``z_m`` only (``Phi`` is the standard normal CDF):

| modality | property | mapping |
|---|---|---|
| visual | the frames' background luma | ``128 + 80 * tanh(z / 1.2)`` (:func:`luma_for`) |
| audio | the tone's pitch | 16 log-spaced steps, 200 to 2000 Hz: step ``floor(16 * Phi(z))`` (no track: none) |
| text | signal hashtags in the caption | the first ``floor(7 * Phi(z))`` of ``SIGNAL_TAGS``, after the others |
| author | the author's followers | ``10 ** (3 + 4.5 * Phi(z))``, one ``z`` per author (hearts follow) |
| time | the posting time of day (UTC) | ``floor(86400 * Phi(z))`` s after midnight, on the post's own day |

A modality left out (or at 0) keeps the catalog's random property, independent of appeal. The author
and time mappings keep the property's distribution over the catalog (uniform log-followers, uniform time
of day): turning them on moves values between posts rather than changing what the site looks like.

**How it is drawn, so that old catalogs stay byte for byte.** The catalog draws a base ``u ~ N(0, 1)``
first, as it always drew appeal. With an author signal, ``appeal = c_author * Z[author] + r * u`` with
``r = sqrt(1 - c_author**2)``; without one, ``appeal = u``: engagement (so the labels) does not depend on
the other signals at all. The per-post components are drawn given ``u``: with ``d = c / r`` (the per-post
modalities' coefficients in ``u``) and ``n`` one standard normal per modality,
``z = d * u + n - k * d * (d . n)``, ``k = (1 - sqrt(1 - |d|**2)) / |d|**2``, an exact sampler of the
model above (``z`` has identity covariance and covariance ``d`` with ``u``). With visual alone this is
``z = s * u + sqrt(1 - s**2) * n``, the catalog's former single ``signal``. ``n`` is the catalog's own
noise draw for visual (as before) and a separate RNG stream per other modality, so adding a modality
reshuffles no other draw of the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..errors import ConfigError
from .vocabulary import SIGNAL_TAGS

MODALITIES = ("visual", "audio", "text", "author", "time")
PER_POST = ("visual", "audio", "text", "time")  # one z per post; author: one z per author
# ``corpus demo``'s strengths: every modality but time carries appeal, visual and audio most.
DEMO_SIGNALS = {"visual": 1.0, "audio": 1.0, "text": 0.5, "author": 0.5, "time": 0.0}

LUMA_CENTER, LUMA_SPREAD = 128, 80
AUDIO_LOW_HZ, AUDIO_HIGH_HZ, AUDIO_STEPS = 200, 2000, 16
FOLLOWERS_LOG10 = (3.0, 7.5)
DAY_S = 86_400


def parse_signals(text: str) -> dict[str, float]:
    """``"visual=1,audio=1,text=0.5"`` (the CLI's ``--signals``) as validated strengths; ``""`` is none."""
    signals: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, sep, value = (piece.strip() for piece in part.partition("="))
        try:
            strength = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise ConfigError(f"--signals wants MODALITY=STRENGTH,... (e.g. visual=1,text=0.5), got {part!r}")
        if name in signals:
            raise ConfigError(f"--signals names {name} twice")
        signals[name] = strength
    return validate_signals(signals)


def validate_signals(signals: Mapping[str, float]) -> dict[str, float]:
    """The strengths as floats, or ConfigError naming the unknown modality or the value out of [0, 1]."""
    for name, strength in signals.items():
        if name not in MODALITIES:
            raise ConfigError(f"unknown signal modality {name!r}; known: {', '.join(MODALITIES)}")
        if not 0.0 <= strength <= 1.0:  # also refuses NaN
            raise ConfigError(f"signal strength of {name} must be within [0, 1], got {strength:g}")
    return {name: float(strength) for name, strength in signals.items()}


def format_signals(signals: Mapping[str, float]) -> str:
    """The text :func:`parse_signals` reads back: ``visual=1,audio=1,text=0.5``."""
    return ",".join(f"{name}={strength:g}" for name, strength in signals.items())


class LatentModel:
    """The coefficients ``c_m`` of the modalities with a strength above 0, and the draws of their components."""

    def __init__(self, signals: Mapping[str, float]) -> None:
        strengths = {m: s for m, s in validate_signals(signals).items() if s > 0}
        scale = math.sqrt(max(1.0, sum(s * s for s in strengths.values())))
        self.coefficients = {m: s / scale for m, s in strengths.items()}
        self.author = self.coefficients.get("author", 0.0)
        self.base_share = math.sqrt(max(0.0, 1.0 - self.author**2))  # r: u's weight in appeal

    def post_components(self, seed: int, base: np.ndarray, visual_noise: np.ndarray) -> dict[str, np.ndarray]:
        """``z_m`` per post for the per-post modalities with a strength, drawn given the base ``u``."""
        names = [m for m in PER_POST if m in self.coefficients]
        if not names:
            return {}
        d = np.array([self.coefficients[m] for m in names]) / self.base_share
        noise = np.stack(
            [visual_noise if m == "visual" else _stream(seed, m).standard_normal(len(base)) for m in names]
        )
        squared = float(d @ d)
        root = math.sqrt(max(0.0, 1.0 - squared))
        eye = np.eye(len(names))
        # I - k d d^T, written so that one modality reduces to ``root`` exactly (the former formula's bytes)
        mix = root * eye + (1.0 - root) * (eye - np.outer(d, d) / squared)
        return dict(zip(names, np.outer(d, base) + mix @ noise))

    def author_components(self, seed: int, authors: int) -> np.ndarray | None:
        """One ``z`` per author (None without an author signal), from the author modality's own stream."""
        return _stream(seed, "author").standard_normal(authors) if self.author else None

    def appeal(self, base: np.ndarray, author_of_post: np.ndarray | None) -> np.ndarray:
        """Each post's appeal: ``base`` itself without an author signal (the former catalogs exactly)."""
        if author_of_post is None:
            return base
        return self.author * author_of_post + self.base_share * base


def _stream(seed: int, modality: str) -> np.random.Generator:
    """The modality's own RNG stream (the catalog's main one is ``default_rng(seed)``)."""
    return np.random.default_rng([seed, MODALITIES.index(modality)])


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _step(z: float, steps: int) -> int:
    """``z`` as one of ``steps`` equally likely steps, 0 to steps - 1, rising with ``z``."""
    return min(steps - 1, int(steps * _phi(z)))


def luma_for(visual: float) -> int:
    """Background luma for a post whose visual component is ``visual``."""
    return int(round(LUMA_CENTER + LUMA_SPREAD * math.tanh(visual / 1.2)))


def tone_hz(audio: float) -> int:
    """The tone's pitch for a post whose audio component is ``audio``: log-spaced steps that a log-mel
    summary tells apart, all within what ffmpeg's sine source renders at 22.05 kHz."""
    step = _step(audio, AUDIO_STEPS)
    return int(round(AUDIO_LOW_HZ * (AUDIO_HIGH_HZ / AUDIO_LOW_HZ) ** (step / (AUDIO_STEPS - 1))))


def signal_tags(text: float) -> list[str]:
    """The signal hashtags a caption carries: more of them (in a fixed order) as ``text`` rises."""
    return SIGNAL_TAGS[: _step(text, len(SIGNAL_TAGS) + 1)]


def followers_log10(author: float) -> float:
    """log10 of the followers of an author whose component is ``author`` (uniform over the catalog's range)."""
    low, high = FOLLOWERS_LOG10
    return low + (high - low) * _phi(author)


def posted_at(create_time: int, time: float, earliest: int, latest: int) -> int:
    """``create_time`` moved within its UTC day to the time of day of ``time``; a day back or on where
    that would leave ``[earliest, latest]`` (a span of at least a day), so the catalog's span stays."""
    moved = create_time - create_time % DAY_S + min(DAY_S - 1, int(DAY_S * _phi(time)))
    if moved > latest:
        return moved - DAY_S
    return moved + DAY_S if moved < earliest else moved
