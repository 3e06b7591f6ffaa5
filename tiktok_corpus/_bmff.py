"""Whether an ISO-BMFF file (mp4/mov: what TikTok serves) is whole, read from its top-level boxes alone.

libav trusts a file's sample table, which a download cut inside its ``mdat`` keeps intact, so
:mod:`tiktok_corpus.media` asks this walk first and believes the stated frame count only where it
vouches for the file; elsewhere it counts the packets, which a cut file runs out of.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .errors import MediaError


def check_whole(path: Path) -> bool:
    """Refuse an empty file or an ISO-BMFF one cut short; returns whether its boxes vouch for it whole
    (False: not ISO-BMFF, or a box whose size does not say where it ends)."""
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name}: empty file (0 bytes)", kind="empty")
    return _is_bmff(path) and _bmff_complete(path)


def _is_bmff(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(8)
    return len(head) == 8 and head[4:8] == b"ftyp"


def _bmff_complete(path: Path) -> bool:
    """Walk the top-level boxes; one that runs past the end of the file, a box header cut in two, or no
    ``mdat`` at all means it was cut short. False where a box's size cannot say that: 0 ("to the end of
    the file", whatever the end) or smaller than its header (no box).

    A cut ``mdat`` keeps its sample table (and so ``nb_frames``) intact, so without this check a
    truncated download would pass as whole; so would one cut where its ``mdat`` begins (a faststart file
    ends whole after its ``moov``), whose stated frames are nowhere in it. An ``mdat`` of size 0 or 4
    cut short passed so, with all its stated frames.
    """
    size = path.stat().st_size
    media_data = False
    with path.open("rb") as fh:
        offset = 0
        while offset < size:
            fh.seek(offset)
            header = fh.read(16)
            if len(header) < 8 or (header[:4] == b"\0\0\0\1" and len(header) < 16):  # a 64-bit size cut off
                raise MediaError(f"{path.name}: a box header cut off at byte {offset} of {size}", kind="truncated")
            box_size, box_type = struct.unpack(">I4s", header[:8])
            media_data = media_data or box_type == b"mdat"
            header_size = 8
            if box_size == 1:  # 64-bit size follows the type
                box_size, header_size = struct.unpack(">Q", header[8:16])[0], 16
            if box_size < header_size:  # 0 runs to the end of the file, which may be cut; less is no box
                if box_type.isalnum() and not media_data:  # a box after which no frame can come
                    break
                return False  # the packets tell; garbage is libav's to call corrupt
            if offset + box_size > size:
                raise MediaError(
                    f"{path.name}: {box_type.decode('latin-1')!r} box needs {offset + box_size} bytes, file has {size}",
                    kind="truncated",
                )
            offset += box_size
    if not media_data:
        raise MediaError(f"{path.name}: no media data ('mdat' box): cut off before its frames", kind="truncated")
    return True
