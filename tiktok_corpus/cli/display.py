"""Everything the CLI draws: progress bars, the live crawl line, summaries and tables."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

from ..durations import format_duration
from ..replica.signals import format_signals
from ..speed import speed_line

if TYPE_CHECKING:
    from ..crawl import CrawlCounters, CrawlSummary
    from ..demo import DemoResult
    from ..download import DownloadSite, DownloadSummary
    from ..track.options import TrackCounters, TrackSummary
    from ..validate import ValidateSummary


class _ShownOnFirstTask(Progress):
    """A progress display drawn from its first task on: a stage stopped before any work (a stale schema,
    a database that cannot be opened) leaves its one-line error alone on the terminal, no empty bar."""

    def __enter__(self) -> Self:
        return self

    def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
        self.start()  # once: a started display is not started again
        return super().add_task(*args, **kwargs)

    def stop(self) -> None:
        if self.live.is_started:  # else rich still ends a display on a file with an empty line
            super().stop()


@contextmanager
def progress_bar(console: Console, enabled: bool = True) -> Iterator[Progress | None]:
    """A progress bar on ``console`` when enabled (``--json`` turns it off), else None."""
    if not enabled:
        yield None
        return
    with _ShownOnFirstTask(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        yield bar


class _LiveLine:
    """One rich live line of a long-running stage: its name, the columns given, the time elapsed. Drawn
    from the stage's first update on (after its store opened), like :class:`_ShownOnFirstTask`. Details
    too long for the width wrap onto more lines rather than being cut: rich draws a log, docker's or
    CI's output at 80 columns, where the crawl's last line lost its name and this run's numbers."""

    def __init__(self, console: Console, name: str, *columns: ProgressColumn) -> None:
        self._progress = _ShownOnFirstTask(
            TextColumn(name, table_column=Column(no_wrap=True)),
            *columns,
            TextColumn("{task.fields[detail]}", table_column=Column(ratio=1)),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._name = name
        self._task: TaskID | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def _show(self, **fields: Any) -> None:
        if self._task is None:
            self._task = self._progress.add_task(self._name, total=None, detail="")
        self._progress.update(self._task, **fields)


class LiveCrawlDisplay(_LiveLine):
    """A rich live line: the corpus's videos against the target, then this run's work, in the summary's words."""

    def __init__(self, console: Console) -> None:
        super().__init__(console, "crawl", BarColumn())

    def update(self, counters: CrawlCounters) -> None:
        detail = (
            f"{_crawl_numbers(counters, counters.downloaded)}, blocks {counters.blocks}, {counters.new_per_s:.2f} new/s"
        )
        self._show(completed=counters.videos, total=counters.target, detail=detail)


def _via(methods: dict[str, int]) -> str:
    """`` (via fetch 12, page 3)``: which methods got the related lists; nothing before the first."""
    return f" (via {', '.join(f'{name} {n}' for name, n in sorted(methods.items()))})" if methods else ""


def _crawl_numbers(c: CrawlCounters | CrawlSummary, downloaded: int) -> str:
    """The live line's and the summary's numbers, each said to be the corpus's (as `corpus status` counts
    them: ``items`` is every row, videos only the video items) or this run's."""
    line = (
        f"corpus: {c.videos}/{c.target} videos, {c.items} items of all kinds, {c.seeds} seeds; "
        f"this run: {c.new_items} new items, {c.expansions} expansions{_via(c.methods)}, {c.edges} edges"
    )
    if c.downloaded_in_corpus is not None:
        line += f", downloaded {downloaded} ({c.downloaded_in_corpus} in the corpus)"
    return line


def crawl_summary_lines(summary: CrawlSummary) -> Iterable[str]:
    downloaded = summary.downloads["downloaded"] if summary.downloads else 0
    yield (
        f"crawl {summary.status}; {_crawl_numbers(summary, downloaded)} "
        f"in {summary.elapsed_s:.1f}s ({summary.videos_per_s:.2f} new/s)"
    )
    if summary.blocks:
        kinds = ", ".join(f"{k}={n}" for k, n in sorted(summary.block_kinds.items()))
        yield f"blocks: {summary.blocks} ({kinds}); context recycles: {summary.recycles}"
    if summary.errors:
        yield "errors: " + ", ".join(f"{k}={n}" for k, n in sorted(summary.errors.items()))
    if summary.downloads:
        yield "downloads this run: " + ", ".join(f"{k}={v}" for k, v in summary.downloads.items())


class LiveTrackDisplay(_LiveLine):
    """A rich live line: observations, targets settled by outcome, blocks, and the next due while following."""

    def __init__(self, console: Console) -> None:
        super().__init__(console, "track")

    def update(self, counters: TrackCounters) -> None:
        detail = f"observations {counters.observations}{_via(counters.methods)}  {_outcomes(counters.outcomes)}"
        detail += f"  blocks {counters.blocks}"
        if counters.next_due_in_s is not None:
            detail += f"  next due in {_site_duration(counters.next_due_in_s)} (site clock)"
        self._show(detail=detail)


def _outcomes(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(outcomes.items())) or "nothing settled yet"


def _site_duration(seconds: float) -> str:
    return format_duration(round(seconds)) if seconds >= 1 else "<1s"


def track_summary_lines(summary: TrackSummary) -> Iterable[str]:
    yield (
        f"track {summary.status}: {summary.observations} observations{_via(summary.methods)} in "
        f"{summary.elapsed_s:.1f}s ({summary.observations_per_s:.2f}/s); targets settled: "
        f"{_outcomes(summary.outcomes)}; {summary.scheduled} newly scheduled"
    )
    queue = summary.queue
    yield (
        f"queue: due now {queue['due_now']}, due later {queue['due_later']}, claimed {queue['claimed']}, "
        f"observed {queue['observed']}, missed {queue['missed']}, gone {queue['gone']}, failed {queue['failed']}"
    )
    if summary.errors:
        yield "errors: " + ", ".join(f"{k}={n}" for k, n in sorted(summary.errors.items()))
    if summary.message:
        yield summary.message


def download_summary_line(summary: DownloadSummary) -> str:
    failures = ", ".join(f"{kind} {count}" for kind, count in summary.failures.most_common())
    return (
        f"downloaded {summary.downloaded}, already present {summary.verified}, failed {summary.failed}"
        f"{f' ({failures})' if failures else ''}; {summary.bytes / 1e6:,.1f} MB at "
        f"{summary.mb_per_s:,.1f} MB/s"
    )


def download_failed_hint(site: DownloadSite) -> str:
    """What to do after a download run that obtained no file: where its failures are, how to try them again."""
    hint = (
        "no file obtained: each video's error is in download_attempts (`corpus status` counts the failed), "
        "and `corpus download --retry-failed` tries them again"
    )
    if site.elsewhere:
        return f"{hint}; this run went to {site.base_url}, the corpus was crawled from {site.crawled} (--base-url)"
    return hint


def validate_table(summary: ValidateSummary) -> Table:
    table = Table(title=f"probed {summary.probed}, requeued {summary.requeued}, reclassified {summary.reclassified}")
    table.add_column("outcome")
    table.add_column("videos", justify="right")
    for outcome, count in summary.counts.items():
        table.add_row(outcome, str(count))
    return table


def damaged_files_note(summary: ValidateSummary) -> str | None:
    """What to do about the files validate found damaged or gone, if any."""
    from ..store.downloads import DAMAGED_PROBES

    if damaged := sum(summary.counts.get(outcome, 0) for outcome in DAMAGED_PROBES):
        return f"{damaged} files corrupt or missing: `corpus download --retry-failed` fetches them again"
    return None


def status_table(counts: dict) -> Table:
    """The queue of every stage, counting items (of every kind: photo posts and ads are skipped) for
    expand, download and probe, and observations (a video at an age) for track."""
    kinds = ", ".join(f"{count} {kind or 'unknown'}" for kind, count in counts.get("item_kinds", {}).items())
    table = Table(
        title=f"{counts['videos']} items{f' ({kinds})' if kinds else ''}, {counts['edges']} related edges, "
        f"{counts['stats_snapshots']} stats snapshots"
    )
    table.add_column("stage")
    table.add_column("status")
    table.add_column("count", justify="right")
    for stage, by_status in counts["stages"].items():
        for name, count in by_status.items():
            table.add_row(stage, name, str(count))
    for method, count in counts["expand_methods"].items():
        table.add_row("expand", f"expanded via {method}", str(count))
    for status, count in counts.get("tracking", {}).items():
        table.add_row("track", f"observations {status.replace('_', ' ')}", str(count))
    for held in counts.get("claims", []):
        table.add_row(
            held["stage"], f"claimed by {held['worker']}: {CLAIM_HOLDER_STATES[held['state']]}", str(held["rows"])
        )
    return table


# What `corpus status` says of a worker holding claims (store/status.py's claim_holders).
CLAIM_HOLDER_STATES = {
    "running": "running",
    "gone": "gone, taken back when the stage next starts",
    "unknown": "another host's, back when its lease ends",
    "lapsed": "another host's, its lease over: the next claim takes them",
}


class DemoConsole:
    """The demo's display on a console: a rule per stage, notes, the live crawl line, progress bars."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def stage(self, name: str) -> None:
        self.console.rule(f"[bold]{name}")

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    def crawl_progress(self) -> AbstractContextManager[LiveCrawlDisplay]:
        return LiveCrawlDisplay(self.console)

    def track_progress(self) -> AbstractContextManager[LiveTrackDisplay]:
        return LiveTrackDisplay(self.console)

    def progress(self) -> AbstractContextManager[Progress | None]:
        return progress_bar(self.console)


def demo_results_table(result: DemoResult) -> Table:
    """Signals, videos, exclusions, class balance, test ROC-AUC beside each modality's oracle and the baselines."""
    from ..export import read_manifest  # pandas, loaded by the demo anyway: not by every command's import

    manifest = read_manifest(result.export_dir)
    probe = result.counts["stages"]["probe"]
    # "skipped" rows are not videos (photo posts, ads, private items): never downloaded nor probed.
    outcomes = {status: n for status, n in probe.items() if status not in ("valid", "pending", "skipped")}
    table = Table(title="demo results", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("signals (strength per modality)", format_signals(result.signals) or "none")
    table.add_row("videos discovered", str(result.counts["videos"]))
    table.add_row("downloaded", str(result.counts["stages"]["download"].get("downloaded", 0)))
    table.add_row("not videos, or gone (photo, ad, private, deleted)", str(probe.get("skipped", 0)))
    table.add_row("excluded by validation", f"{sum(outcomes.values())} ({_plain(outcomes)})")
    tracking = result.tracking
    table.add_row(
        "tracked (a simulated week)",
        f"{tracking['observations']} observations; targets {_plain({k: n for k, n in tracking['queue'].items() if n})}",
    )
    table.add_row("exported", export_summary(manifest))
    model, baselines = result.metrics["model"], result.metrics["baselines"]
    table.add_row("test ROC-AUC (model)", _auc(model))
    for modality, auc in result.oracle_aucs.items():  # the most a model of that modality can get here
        table.add_row(f"test ROC-AUC ({modality} oracle: its true latent component)", f"{auc:.3f}")
    for name, values in baselines.items():
        table.add_row(f"test ROC-AUC ({name} baseline)", _auc(values))
    table.add_row("verdict", result.metrics["verdict"])
    table.add_row("training speed", speed_line(result.metrics["speed"]).removeprefix("training: "))
    for name, seconds in result.timings_s.items():
        table.add_row(f"time: {name}", f"{seconds:.1f} s")
    return table


def _auc(values: dict) -> str:
    auc = values.get("roc_auc")
    return "n/a" if auc is None else f"{auc:.3f}"


def export_summary(manifest: dict) -> str:
    """An export in a line: its rows, class balance, splits, when the counts behind its labels were taken,
    and the otherwise valid videos left out for want of such counts, by reason."""
    viral, basis = manifest["counts"]["is_viral"], manifest["age_basis"]
    if isinstance(basis, dict):
        taken = f"at age {basis['at_age']}"
    else:  # "latest snapshot", or "as of <time>"
        taken = basis if basis.startswith("as of") else f"from the {basis}"
    return (
        f"{manifest['row_count']} (viral {viral['1']}, not viral {viral['0']}; "
        f"splits {_plain(manifest['counts']['split'])}; labels {taken}{_left_out(manifest['selection'])})"
        f"{_unit_warning(manifest)}{_empty_split_warning(manifest)}{_one_class_warning(manifest)}"
    )


def _one_class_warning(manifest: dict) -> str:
    """A warning naming the non-empty splits whose videos are all viral or all not: a binary model's
    ROC-AUC there is undefined, and early stopping on such a val split learns nothing (few viral videos,
    stratified or not, can leave none in val or test)."""
    by_split = manifest["counts"].get("split_is_viral", {})
    one_class = [name for name, classes in by_split.items() if sum(classes.values()) and min(classes.values()) == 0]
    if manifest.get("label") != "binary" or not one_class:
        return ""
    named = one_class[0] if len(one_class) == 1 else f"{', '.join(one_class[:-1])} and {one_class[-1]}"
    return f"; warning: {named} hold{'s' if len(one_class) == 1 else ''} one class only"


def _empty_split_warning(manifest: dict) -> str:
    """A warning naming the splits asked for that came out empty (too few rows, or too few split units):
    training and its report need rows in train, val and test."""
    counts, fractions = manifest["counts"]["split"], manifest["split"]["fractions"]
    empty = [name for name, fraction in fractions.items() if fraction > 0 and not counts.get(name)]
    if not empty:
        return ""
    splits_are = f"{' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'}"
    return f"; warning: the {splits_are} empty (train needs all three)"


def _left_out(selection: dict) -> str:
    """``; left out: 25 too old at first sighting`` (the manifest's counts), or "" when none was."""
    reasons = selection.get("excluded_by_reason") or {"without a stats snapshot": selection.get("excluded_no_stats", 0)}
    counts = [f"{n} {reason.replace('_', ' ')}" for reason, n in reasons.items() if n]
    return f"; left out: {', '.join(counts)}" if counts else ""


def _unit_warning(manifest: dict) -> str:
    """A warning when one split unit (an author, or videos sharing a file) outweighs half of the smallest
    split's share: the splits' sizes are then far from the fractions asked for."""
    largest, rows = manifest["split"].get("largest_unit_videos", 0), manifest["row_count"]
    smallest = min((f for f in manifest["split"]["fractions"].values() if f > 0), default=1.0)
    if largest <= 1 or largest <= 0.5 * smallest * rows:
        return ""
    return f"; warning: one split unit holds {largest} videos (an author, or videos sharing a file)"


def _plain(counts: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items()) or "none"


def ablation_table(result: dict) -> Table:
    """One line per ablation line: its test metric with the 95% interval, the oracle, the verdict; and
    each modality's permutation drop with its interval, only where the model they explain beats the
    baselines (else the caption says why there is no ranking)."""
    metric, importances = result["main_metric"], result["importances"]
    table = Table(title=f"What drives virality in this corpus (gbdt, test {metric}, n={result['n_test']})")
    table.add_column("modalities", no_wrap=True)
    for column in (metric, "95% CI", "oracle", "beats baselines", "permutation drop (95% CI)"):
        table.add_column(column)
    credible = importances.get("credible", True)  # ablations written before the flag ranked always
    drops, drop_intervals = importances["permutation_by_modality"], importances.get("permutation_by_modality_ci", {})
    for row in result["rows"]:
        drop = drops.get(row["name"]) if row["kind"] == "single" and credible else None
        table.add_row(
            row["name"],
            _metric_text(row["metric"]),
            _interval_text(row["ci"]),
            _metric_text(result["oracles"].get(row["name"]), missing=""),
            "yes" if row["beats_baselines"] else "no",
            "" if drop is None else f"{drop:+.3f} ({_interval_text(drop_intervals.get(row['name']))})",
        )
    table.caption = "; ".join(_ablation_caption(result, credible))
    return table


def _ablation_caption(result: dict, credible: bool) -> Iterator[str]:
    """Why a metric or interval is n/a (a test split of one class, or with one video of a class), the
    baselines' metrics, and why no drop is ranked."""
    notes = dict.fromkeys(row["metric_note"] for row in result["rows"] if row.get("metric_note"))
    yield from (f"{result['main_metric']} {note}" for note in notes)
    if result["baselines"]:
        yield "baselines: " + ", ".join(f"{name} {_metric_text(value)}" for name, value in result["baselines"].items())
    if family := result.get("multiple_comparisons"):  # ablations written before it held each line alone
        yield f"beats baselines: after Holm's correction over the {family['family_size']} lines"
    if not credible:
        yield f"permutation drops: {result['importances']['credibility']}"


def _metric_text(value: float | None, *, missing: str = "n/a") -> str:
    return missing if value is None else f"{value:.3f}"


def _interval_text(bounds: list[float] | None) -> str:
    return "n/a" if bounds is None else f"{bounds[0]:.3f}-{bounds[1]:.3f}"
