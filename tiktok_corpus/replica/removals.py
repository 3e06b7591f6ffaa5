"""Which posts the replica serves, and the statusCode the others answer, including posts taken down mid-run."""

from __future__ import annotations

from ..errors import ConfigError
from .catalog import Catalog, CatalogVideo
from .items import STATUS_NOT_FOUND, STATUS_OK, STATUS_PRIVATE

REMOVAL_CODES = {STATUS_NOT_FOUND: "deleted", STATUS_PRIVATE: "made private"}


class Removals:
    """The catalog's deleted and private posts, plus those removed while serving (:meth:`Replica.remove`)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._codes: dict[str, int] = {}

    def remove(self, video_id: str, status_code: int = STATUS_NOT_FOUND) -> None:
        """From now on the post's page and detail API answer ``status_code`` (10204 deleted, 10216 private)."""
        if video_id not in self._catalog.by_id:
            raise ConfigError(f"no post {video_id!r} in the replica's catalog")
        if status_code not in REMOVAL_CODES:
            known = ", ".join(f"{code} ({meaning})" for code, meaning in REMOVAL_CODES.items())
            raise ConfigError(f"a post is removed with statusCode {known}, not {status_code}")
        self._codes[video_id] = status_code

    def status(self, video: CatalogVideo | None) -> int:
        """0 for a post the site serves, else the statusCode its page and detail API answer."""
        if video is None or video.kind == "deleted":
            return STATUS_NOT_FOUND
        if video.id in self._codes:
            return self._codes[video.id]
        return STATUS_PRIVATE if video.kind == "private" else STATUS_OK
