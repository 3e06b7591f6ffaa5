"""A queue worker run as its own process by the claim tests (not collected: no ``test_`` prefix).

Usage: ``claim_worker.py DB_URL BATCH LEASE_S drain|die``. It opens the store, prints ``ready`` and
waits for ``go`` on stdin so all workers start together. It claims one batch, prints ``claimed`` and
waits for a second ``go``, which the test sends once every worker has claimed: so each worker holds
rows while the others claim, whatever the timing (SQLite's busy handler would otherwise let a fast
process take every batch before the others wake up). Then:

* ``drain`` - goes on claiming ``download`` rows in batches until none are left, finishes each row
  as ``downloaded`` in its own transaction, and prints the ids it claimed as one JSON list;
* ``die``   - prints the ids of its one batch and exits abruptly without finishing them.
"""

import json
import os
import sys

from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.queue import claim, finish


def main(url: str, batch: int, lease_s: float, mode: str) -> None:
    store = open_store(Settings(db_url=url))
    print("ready", flush=True)
    sys.stdin.readline()
    ids = claim(store, "download", batch, lease_s=lease_s)
    print("claimed", flush=True)
    sys.stdin.readline()
    claimed: list[str] = []
    while True:
        claimed.extend(ids)
        if mode == "die":
            print(json.dumps(claimed), flush=True)
            os._exit(0)  # a dead worker: no finish, no release, no clean shutdown
        if not ids:
            break
        for video_id in ids:
            with store.transaction() as session:
                finish(session, "download", video_id, "downloaded")
        ids = claim(store, "download", batch, lease_s=lease_s)
    store.dispose()
    print(json.dumps(claimed), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
