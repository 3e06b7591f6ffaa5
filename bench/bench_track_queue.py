"""The tracker's queue at corpus scale (store/tracking.py): does a claim cost the same whatever the
backlog, and what does a schedule refresh cost?

Seeds --videos videos posted over the last 90 days on a fresh database, schedules the ages 1h, 6h, 1d,
3d, 7d and 30d, then times a claim of one video (plus its release, so the backlog stays as it is) at two
moments: once what was due is observed, a minute on (a handful due) and ten days on (a backlog of tens
of thousands at the default size). Printed:
ms per claim at each and their ratio (goal <= 2: a claim reads a few rows per age, it does not sort the
backlog), and ms per schedule refresh with nothing new to add (the tracker spaces its refreshes to 20
times their cost, at least 5 s apart). SQLite, and Postgres when CORPUS_TEST_PG_URL is set.

    .venv/bin/python bench/bench_track_queue.py [--videos 300000] [--claims 50]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid

from sqlalchemy import insert, text, update

from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import make_engine, open_store, upgrade
from tiktok_corpus.store.models import TrackTarget, Video
from tiktok_corpus.store.tracking import claim_due, release_targets, schedule_targets, tracking_counts

NOW = 1_790_000_000
DAY = 86_400
AGES = (3_600, 6 * 3_600, DAY, 3 * DAY, 7 * DAY, 30 * DAY)
LATE_FRACTION = 0.25


def fresh_store(url: str):
    if url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with make_engine(url).begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return open_store(Settings(db_url=url))


def seed(store, videos: int) -> None:
    rng = random.Random(0)
    with store.transaction() as session:
        for start in range(0, videos, 20_000):
            rows = [
                {"id": str(7_200_000_000_000_000_000 + n), "create_time": NOW - rng.randrange(90 * DAY)}
                for n in range(start, min(videos, start + 20_000))
            ]
            session.execute(insert(Video), rows)


def ms_per_claim(store, claims: int, *, now: float) -> float:
    started = time.perf_counter()
    for n in range(claims):
        claimed = claim_due(
            store, 1, now=now, worker=f"bench:{os.getpid()}:t{n}", lease_s=60, late_fraction=LATE_FRACTION
        )
        assert claimed, "nothing due"
        release_targets(store, claimed, worker=f"bench:{os.getpid()}:t{n}")
    return (time.perf_counter() - started) / claims * 1000


def bench(label: str, url: str, videos: int, claims: int) -> None:
    with fresh_store(url) as store:
        measure(label, store, videos, claims)


def measure(label: str, store, videos: int, claims: int) -> None:
    seed(store, videos)
    scheduled = schedule_targets(store, AGES, now=NOW, late_fraction=LATE_FRACTION)
    started = time.perf_counter()
    schedule_targets(store, AGES, now=NOW, late_fraction=LATE_FRACTION)
    refresh_ms = (time.perf_counter() - started) * 1000
    with store.transaction() as session:  # what is due now was observed: a tracker keeping up
        session.execute(update(TrackTarget).where(TrackTarget.due_at <= NOW).values(status="observed"))
    if store.dialect == "postgresql":  # as autovacuum would have by then
        with store.transaction() as session:
            session.execute(text("ANALYZE"))
    few, many = NOW + 60, NOW + 10 * DAY  # a minute on, and after ten days without a tracker
    few_due = tracking_counts(store, now=few)["due_now"]
    many_due = tracking_counts(store, now=many)["due_now"]
    ms_few, ms_many = ms_per_claim(store, claims, now=few), ms_per_claim(store, claims, now=many)
    print(
        f"{label}: {videos:,} videos, {scheduled:,} targets; claim {ms_few:.1f} ms with {few_due:,} due, "
        f"{ms_many:.1f} ms with {many_due:,} due: ratio {ms_many / ms_few:.2f} (goal <= 2); "
        f"schedule refresh {refresh_ms:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=300_000)
    parser.add_argument("--claims", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{tmp}/bench.db", args.videos, args.claims)
    if pg := os.environ.get("CORPUS_TEST_PG_URL"):
        bench("postgres", pg, args.videos, args.claims)


if __name__ == "__main__":
    main()
