"""A worker of another host, run as its own process by the worker tests (not collected: no ``test_`` prefix).

Usage: ``present_worker.py DB_URL HOST``. It goes by host name HOST (another machine, or a container of
``docker compose run --rm``: none can run here), and through its store claims 2 ``download`` rows, the
due tracking target of video "t" and a crawl run. It prints ``held`` and waits on stdin, alive, until the
test kills it.
"""

import socket
import sys

from tiktok_corpus.config import Settings
from tiktok_corpus.store.crawl_runs import start_run
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.queue import claim
from tiktok_corpus.store.tracking import claim_due
from tiktok_corpus.store.workers import worker_name


def main(url: str, host: str) -> None:
    socket.gethostname = lambda: host
    store = open_store(Settings(db_url=url))
    claim(store, "download", 2)
    claim_due(store, 1, now=10**10, worker=worker_name(store, "t0"), lease_s=600, late_fraction=0.25)
    start_run(store, {})
    print("held", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
