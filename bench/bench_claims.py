"""Work-queue claim throughput: the cost the queue adds to every stage.

Baseline: the floor under any claim - one bare ``UPDATE videos SET download_status=... WHERE id=?``
transaction per row, no selection, no lease. Measured: ``claim(store, "download", batch)`` plus a
``finish`` per row in its own transaction (what a stage does), over the same number of rows. Printed:
rows/s of each and the ratio claim+finish / baseline (goal >= 0.5: the queue costs at most as much as
the one write a stage makes anyway). Runs on SQLite, and on Postgres when CORPUS_TEST_PG_URL is set.

    .venv/bin/python bench/bench_claims.py [--rows 2000] [--batch 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from sqlalchemy import create_engine, insert, text, update

from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import make_engine, open_store, upgrade
from tiktok_corpus.store.models import Video
from tiktok_corpus.store.queue import claim, finish


def fresh_store(url: str):
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return open_store(Settings(db_url=url))


def seed(store, rows: int) -> list[str]:
    ids = [str(7_200_000_000_000_000_000 + n) for n in range(rows)]
    with store.transaction() as session:
        session.execute(insert(Video), [{"id": video_id} for video_id in ids])
    return ids


def rows_per_s_baseline(store, ids: list[str]) -> float:
    start = time.perf_counter()
    for video_id in ids:
        with store.transaction() as session:
            session.execute(update(Video).where(Video.id == video_id).values(download_status="downloaded"))
    return len(ids) / (time.perf_counter() - start)


def rows_per_s_queue(store, batch: int) -> float:
    start, done = time.perf_counter(), 0
    while ids := claim(store, "download", batch):
        for video_id in ids:
            with store.transaction() as session:
                finish(session, "download", video_id, "downloaded")
        done += len(ids)
    return done / (time.perf_counter() - start)


def measure(label: str, url: str, rows: int, batch: int) -> None:
    store = fresh_store(url)
    try:
        baseline = rows_per_s_baseline(store, seed(store, rows))
        with store.transaction() as session:
            session.execute(text("DELETE FROM videos"))
        seed(store, rows)
        queue = rows_per_s_queue(store, batch)
    finally:
        store.dispose()
    print(
        f"{label:9s} baseline (bare UPDATE/row) {baseline:8.0f} rows/s | claim(batch={batch})+finish "
        f"{queue:8.0f} rows/s | ratio {queue / baseline:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", f"sqlite:///{tmp}/bench.db", args.rows, args.batch)
    pg_url = os.environ.get("CORPUS_TEST_PG_URL")
    if pg_url:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            sep = "&" if "?" in pg_url else "?"
            measure("postgres", f"{pg_url}{sep}options=-csearch_path%3D{schema}", args.rows, args.batch)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
