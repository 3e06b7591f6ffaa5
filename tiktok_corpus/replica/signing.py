"""Request signing as TikTok does it, so the crawler can be tested against a site that refuses forged calls.

The guarded APIs want a signature over their query string; a missing, wrong or stale one gets the
real site's answer to a forged call (HTTP 200, empty body, ``tt_orcas_res: 1``). Modes:

* ``none``: nothing is checked (the replica's behaviour before signing existed).
* ``xbogus``: ``X-Bogus`` must equal what the pages' ``window.byted_acrawler.frontierSign(url)`` gives.
* ``gnarly``: ``ts`` (unix seconds, within :data:`MAX_SKEW_S` of the replica's clock) and ``X-Gnarly``,
  made with a second key that only lives inside the pages' own script closure; X-Bogus alone is refused.

Both signatures are :func:`keyed_hash` of a key and :func:`signed_text`. The pages compute the very same
hash in JS (:data:`SIGNING_JS`, synchronous like the real frontierSign); the keys are drawn at random on
every start (:meth:`SigningKeys.draw`), so no client can hard-code them. A toy, not cryptography: it only
has to make the page the one place that can sign.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..errors import ConfigError

SIGNING_MODES = ("none", "xbogus", "gnarly")
SIGNATURE_PARAMS = ("X-Bogus", "X-Gnarly")
MAX_SKEW_S = 60  # a signed URL lives about a minute on the real site

_MASK = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3

# The JS twin of keyed_hash and signed_text, bit for bit (BigInt keeps the 64-bit arithmetic exact).
SIGNING_JS = """
const SIGNATURE_PARAMS = ['X-Bogus', 'X-Gnarly'];
const MASK64 = (1n << 64n) - 1n;
function keyedHash(key, text) {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(key + '\\n' + text)) {
    h = ((h ^ BigInt(byte)) * 0x100000001b3n) & MASK64;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK64;
  h ^= h >> 33n;
  return h.toString(16).padStart(16, '0');
}
function signedText(url) {
  const query = new URL(String(url), location.href).search.slice(1);
  return query.split('&').filter((part) => !SIGNATURE_PARAMS.includes(part.split('=')[0])).join('&');
}
"""


def validate_signing(mode: str) -> str:
    """A known mode, or a ConfigError naming the known ones."""
    if mode not in SIGNING_MODES:
        raise ConfigError(f"unknown signing mode {mode!r}; known: {', '.join(SIGNING_MODES)}")
    return mode


def keyed_hash(key: str, text: str) -> str:
    """FNV-1a 64 over ``key``, a newline and ``text`` (UTF-8), then a murmur finaliser; 16 hex digits."""
    h = _FNV_OFFSET
    for byte in f"{key}\n{text}".encode():
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK
    h ^= h >> 33
    return f"{h:016x}"


def signed_text(query: str) -> str:
    """The query string as sent, minus the signature parameters, the others kept in their order."""
    return "&".join(part for part in query.split("&") if part.partition("=")[0] not in SIGNATURE_PARAMS)


@dataclass(frozen=True)
class SigningKeys:
    """One replica start's keys: X-Bogus (frontierSign's) and X-Gnarly (private to the page scripts)."""

    xbogus: str
    gnarly: str

    @classmethod
    def draw(cls) -> SigningKeys:
        return cls(secrets.token_hex(16), secrets.token_hex(16))

    def refusal(self, mode: str, query: str, now: float) -> str | None:
        """Why a guarded call with this raw query string is refused under ``mode``; None if it is accepted."""
        if mode == "none":
            return None
        params = _first_values(query)
        text = signed_text(query)
        if mode == "xbogus":
            return _mismatch("X-Bogus", params.get("X-Bogus"), keyed_hash(self.xbogus, text))
        ts = params.get("ts")
        if ts is None:
            return "missing ts"
        sent = query_number(ts)
        if sent is None or abs(now - sent) > MAX_SKEW_S:
            return "stale ts"
        return _mismatch("X-Gnarly", params.get("X-Gnarly"), keyed_hash(self.gnarly, text))


def query_number(text: str, most_digits: int = 18) -> int | None:
    """A query parameter's whole number as the site reads one, else None: ASCII digits only ("²" is a
    digit to ``isdigit``, not to ``int``), and no more of them than a number it takes can have (thousands
    are past ``int()``'s limit: a 500)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= most_digits else None


def _first_values(query: str) -> dict[str, str]:
    """Raw (undecoded) value of each parameter's first occurrence: signatures and ts are hex and digits."""
    params: dict[str, str] = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        params.setdefault(name, value)
    return params


def _mismatch(name: str, sent: str | None, expected: str) -> str | None:
    if sent is None:
        return f"missing {name}"
    return None if sent == expected else f"wrong {name}"


class SigningSetting:
    """The mode a replica enforces, switched while it serves (from a test, the admin endpoint or the CLI).

    Switching is one assignment of an immutable string, atomic under the GIL, so every request reads
    either the old mode or the new one.
    """

    def __init__(self, mode: str) -> None:
        self._mode = validate_signing(mode)

    @property
    def mode(self) -> str:
        return self._mode

    def set(self, mode: str) -> None:
        self._mode = validate_signing(mode)
