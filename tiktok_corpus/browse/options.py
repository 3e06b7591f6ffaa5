"""``corpus browse``'s options, without the web stack (the CLI reads defaults and help from them)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import described


@dataclass(frozen=True)
class BrowseOptions:
    """Where ``corpus browse`` listens and what it prepares."""

    host: str = described(
        "127.0.0.1",
        "Address to bind (the default serves this machine only). Requests must name it or localhost: to serve "
        "a LAN, bind this machine's address on it and browse to that address.",
    )
    port: int = described(8765, "Port to listen on (0 picks a free one).")
    posters: bool = described(
        True, "Extract the missing poster frames in the background while serving (else each on first view)."
    )
