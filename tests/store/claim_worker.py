"""A queue worker run as its own process by the claim tests (not collected: no ``test_`` prefix).

Usage: ``claim_worker.py DB_URL BATCH LEASE_S drain|die``. It opens the store, prints ``ready``,
waits for ``go`` on stdin so all workers start together, then:

* ``drain`` - claims ``download`` rows in batches until none are left, "works" on each batch for
  ``WORK_S``, finishes each row as ``downloaded`` in its own transaction, and prints the ids it
  claimed as one JSON list;
* ``die``   - claims one batch, prints the ids and exits abruptly without finishing them.
"""

import json
import os
import sys
import time

from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.queue import claim, finish

# Without a pause between claims, SQLite's busy handler can let one process take every batch
# before the other wakes up: correct, but it would show no competition.
WORK_S = 0.01


def main(url: str, batch: int, lease_s: float, mode: str) -> None:
    store = open_store(Settings(db_url=url))
    print("ready", flush=True)
    sys.stdin.readline()
    claimed: list[str] = []
    while True:
        ids = claim(store, "download", batch, lease_s=lease_s)
        claimed.extend(ids)
        if mode == "die":
            print(json.dumps(claimed), flush=True)
            os._exit(0)  # a dead worker: no finish, no release, no clean shutdown
        if not ids:
            break
        time.sleep(WORK_S)  # the batch's work happens outside any transaction, as in a real stage
        for video_id in ids:
            with store.transaction() as session:
                finish(session, "download", video_id, "downloaded")
    store.dispose()
    print(json.dumps(claimed), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
