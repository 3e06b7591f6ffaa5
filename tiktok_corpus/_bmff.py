"""Whether an ISO-BMFF file (mp4/mov: what TikTok serves) is whole, read from its top-level boxes alone.

libav trusts a file's sample table, which a download cut inside its ``mdat`` keeps intact, so
:mod:`tiktok_corpus.media` asks this walk first and only then believes the stated frame count.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .errors import MediaError


def check_whole(path: Path) -> bool:
    """Refuse an empty file or an ISO-BMFF one cut short; returns whether it is ISO-BMFF."""
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name}: empty file (0 bytes)", kind="empty")
    bmff = _is_bmff(path)
    if bmff:
        _check_bmff_complete(path)
    return bmff


def _is_bmff(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(8)
    return len(head) == 8 and head[4:8] == b"ftyp"


def _check_bmff_complete(path: Path) -> None:
    """Walk the top-level boxes; one that runs past the end of the file, a box header cut in two, or no
    ``mdat`` at all means it was cut short.

    A cut ``mdat`` keeps its sample table (and so ``nb_frames``) intact, so without this check a
    truncated download would pass as whole; so would one cut where its ``mdat`` begins (a faststart file
    ends whole after its ``moov``), whose stated frames are nowhere in it.
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
            if box_size == 1:  # 64-bit size follows the type
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:  # runs to the end of the file: nothing in it is cut, libav judges the rest
                return
            if box_size < 8:
                return  # not a box: leave the verdict to ffprobe
            if offset + box_size > size:
                raise MediaError(
                    f"{path.name}: {box_type.decode('latin-1')!r} box needs {offset + box_size} bytes, file has {size}",
                    kind="truncated",
                )
            offset += box_size
    if not media_data:
        raise MediaError(f"{path.name}: no media data ('mdat' box): cut off before its frames", kind="truncated")
