"""CLI smoke tests: the command list, db upgrade/status on SQLite and Postgres, the error boundary."""

from __future__ import annotations

import errno
import json
import re
import socket
import subprocess
import sys
import time

import pytest
import typer
from sqlalchemy import insert
from sqlalchemy import text as sql
from typer.main import get_command
from typer.testing import CliRunner

from tiktok_corpus.cli import CorpusGroup, app
from tiktok_corpus.cli.app import say_interrupted
from tiktok_corpus.config import Settings
from tiktok_corpus.crawl import CrawlOptions
from tiktok_corpus.errors import ConfigError, CorpusError, StaleSchemaError
from tiktok_corpus.replica.config import DEMO_MIN_VIDEOS
from tiktok_corpus.store.db import downgrade, head_revision, make_engine, open_store
from tiktok_corpus.store.models import TrackTarget, Video

runner = CliRunner()

COMMANDS = {
    "db",
    "crawl",
    "track",
    "download",
    "validate",
    "export",
    "features",
    "train",
    "ablate",
    "predict",
    "report",
    "browse",
    "demo",
    "replica",
    "status",
}


def corpus(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


def test_help_lists_every_command():
    group = get_command(app)

    assert set(group.commands) >= COMMANDS
    assert set(group.commands["db"].commands) >= {"upgrade", "current"}
    assert "serve" in group.commands["replica"].commands
    result = corpus("--help")
    assert result.exit_code == 0
    assert all(name in result.output for name in COMMANDS)


def test_help_paragraphs_wrap_at_the_terminal_not_at_the_source():
    wide = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}
    listed = corpus("--help", env=wide).output
    assert "LightGBM on the feature tables (--model gbdt, minutes on a CPU)" in listed  # one line in the list
    own = corpus("browse", "--help", env=wide).output
    assert "each video's page (playback, stats over time," in own  # a later paragraph, reflowed too


def test_help_shows_flags_bare_and_arguments_by_name():
    """typer 0.29 printed every flag as `--json <bool>` (as if it took a value) and arguments in lower case."""
    status, train = corpus("status", "--help").output, corpus("train", "--help").output
    assert "<bool>" not in status and re.search(r"--json\s+Print the counts as JSON", status), status
    assert "EXPORT_DIR" in train and "export_dir" not in train


def test_db_upgrade_then_status_json(any_db_url):
    upgraded = corpus("--db", any_db_url, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "is at schema" in upgraded.output
    assert corpus("--db", any_db_url, "db", "upgrade").exit_code == 0  # idempotent

    store = open_store(Settings(db_url=any_db_url))
    with store.transaction() as session:
        session.execute(
            insert(Video),
            [
                {"id": "1", "download_status": "downloaded", "expand_status": "expanded", "expand_method": "signed"},
                {"id": "2"},
            ],
        )
    store.dispose()

    result = corpus("--db", any_db_url, "status", "--json")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts["videos"] == 2
    assert counts["stages"]["download"] == {"downloaded": 1, "pending": 1}
    assert counts["expand_methods"] == {"signed": 1}

    table = corpus("--db", any_db_url, "status")
    assert table.exit_code == 0 and "downloaded" in table.stdout and "expanded via signed" in table.stdout


def test_status_shows_the_tracking_queue(any_db_url):
    assert corpus("--db", any_db_url, "db", "upgrade").exit_code == 0
    store = open_store(Settings(db_url=any_db_url))
    now = int(time.time())
    with store.transaction() as session:
        session.execute(insert(Video), [{"id": "1", "create_time": now - 7_200}])
        session.execute(
            insert(TrackTarget),
            [
                {"video_id": "1", "age_s": 3_600, "due_at": now - 3_600, "status": "observed"},
                {"video_id": "1", "age_s": 6_000, "due_at": now - 1_200},
                {"video_id": "1", "age_s": 86_400, "due_at": now + 79_200},
            ],
        )
    store.dispose()
    counts = json.loads(corpus("--db", any_db_url, "status", "--json").stdout)
    assert counts["tracking"] == {
        "due_now": 1,
        "due_later": 1,
        "claimed": 0,
        "observed": 1,
        "missed": 0,
        "gone": 0,
        "failed": 0,
    }
    assert "observations due later" in corpus("--db", any_db_url, "status").stdout  # not "videos": one is 3

    # A replica whose clock runs a day per second, started an hour ago: its site time is days ahead.
    fast = ["--time-scale", "86400", "--time-origin", str(now - 3_600)]
    on_site_clock = json.loads(corpus("--db", any_db_url, "status", "--json", *fast).stdout)
    assert on_site_clock["tracking"]["due_now"] == 2 and on_site_clock["tracking"]["due_later"] == 0
    half = corpus("--db", any_db_url, "status", "--time-scale", "86400")
    assert half.exit_code == 1 and "--time-scale and --time-origin go together" in half.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--until", "7d"], "--until needs --follow"),
        (["--follow", "--until", "a week"], "--until 'a week': expected a duration"),
        (["--ages", "1h,soon"], "--ages 'soon': expected a duration"),
        (["--via", "curl"], "unknown --via 'curl'"),
        (["--time-scale", "60"], "--time-scale and --time-origin go together"),
    ],
)
def test_track_refuses_bad_options_with_one_line(flags, message, tmp_path):
    result = corpus("--db", f"sqlite:///{tmp_path / 'c.db'}", "track", *flags)
    assert result.exit_code == 1 and message in result.output, result.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--related-via", "curl"], "unknown --related-via 'curl': use one of auto, fetch, signed, page"),
        (["--fallback-after", "0"], "Invalid value for '--fallback-after'"),
    ],
)
def test_crawl_refuses_an_unknown_related_list_method_before_it_starts(settings, flags, message):
    result = corpus("--data-dir", str(settings.data_dir), "crawl", *flags)

    assert result.exit_code in (1, 2) and message in result.stderr
    assert not settings.data_dir.exists(), "nothing was opened"


@pytest.mark.parametrize("command", [["status"], ["crawl"], ["track"], ["download"], ["validate"]])
def test_a_stale_schema_is_one_line_and_exit_1(settings, command):
    """The one line, alone: no progress display is drawn before the store refuses to open."""
    open_store(settings).dispose()
    engine = make_engine(settings.db_url)
    downgrade(engine, "base")
    engine.dispose()

    result = corpus("--db", settings.db_url, *command)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0, result.stderr
    assert "corpus db upgrade" in result.stderr
    scripted = corpus("--db", settings.db_url, *command, "--json")  # the same line on stderr, a document on stdout
    assert (scripted.exit_code, scripted.stderr) == (1, result.stderr)
    assert json.loads(scripted.stdout) == {"error": "stale_schema", "exit_code": 1, "message": result.stderr[7:-1]}
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_db_current_says_whether_the_schema_is_this_versions(settings):
    """Up to date, behind (an upgrade fixes it) or migrated by a newer version (one does not): in words
    and, for scripts, as JSON."""
    open_store(settings).dispose()
    head = head_revision()

    def current() -> tuple[str, dict]:
        text_result, json_result = (
            corpus("--db", settings.db_url, "db", "current"),
            corpus("--db", settings.db_url, "db", "current", "--json"),
        )
        assert text_result.exit_code == json_result.exit_code == 0, text_result.output + json_result.output
        return text_result.stdout, json.loads(json_result.stdout)

    assert current() == (f"current: {head}  head: {head}\n", {"current": head, "head": head, "up_to_date": True})
    engine = make_engine(settings.db_url)
    downgrade(engine, "base")
    said, document = current()
    assert "behind: `corpus db upgrade` migrates it" in said
    assert document == {"current": None, "head": head, "up_to_date": False}
    with engine.begin() as connection:
        connection.execute(sql("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(sql("INSERT INTO alembic_version VALUES ('f00dfeedbeef')"))
    engine.dispose()
    said, document = current()
    assert "a newer tiktok-corpus migrated it" in said and document["current"] == "f00dfeedbeef"
    upgraded = corpus("--db", settings.db_url, "db", "upgrade")  # said only "Can't locate revision"
    assert upgraded.exit_code == 1 and "migrated by a newer one): upgrade tiktok-corpus" in upgraded.stderr


def test_a_migration_that_fails_on_the_database_is_one_line_naming_where_it_stopped(tmp_path):
    """A database whose recorded revision is behind its tables (a copy restored over another's schema, a
    hand edit): the migration's ``ALTER TABLE`` fails, and ``db upgrade`` printed a screen of traceback."""
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    assert corpus("--db", db_url, "db", "upgrade").exit_code == 0
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sql("UPDATE alembic_version SET version_num = '0010'"))  # music_original is there
    engine.dispose()

    upgraded = corpus("--db", db_url, "db", "upgrade")

    assert upgraded.exit_code == 1, upgraded.output
    assert upgraded.stderr.startswith(f"error: cannot upgrade {db_url} past revision 0010: a migration failed: ")
    assert "duplicate column name: music_original" in upgraded.stderr
    assert len(upgraded.stderr.strip().splitlines()) == 1 and "Traceback" not in upgraded.output, upgraded.stderr


@pytest.mark.parametrize(
    "command",
    [
        *(["crawl", flag, "0"] for flag in ("--seeds", "--fanout", "--max-videos", "--workers")),
        *(["validate", flag, "0"] for flag in ("--workers", "--min-frames", "--min-side")),
    ],
)
def test_a_count_below_one_is_a_usage_error_like_its_siblings(tmp_path, command):
    """``crawl --workers 0`` was a usage error (exit 2) and ``crawl --seeds 0`` an error of the run (exit 1,
    its range not in --help): one kind of mistake, two exit codes for a script to tell apart."""
    result = corpus("--data-dir", str(tmp_path / "data"), *command)

    assert result.exit_code == 2 and f"Invalid value for '{command[1]}': 0 is not in the range x>=1" in result.stderr


@pytest.mark.parametrize(
    "command",
    [["crawl"], ["track"], ["export"], ["train", "EXPORT"], ["ablate", "EXPORT"], ["replica", "serve"], ["demo"]],
)
def test_a_seed_no_random_generator_takes_is_refused_before_any_work(tmp_path, command):
    """numpy and torch raise on a negative seed: the network's run failed at once with a traceback, an
    ablation after fitting every line, the replica while building its catalog."""
    for seed in ("-1", str(2**32)):
        result = corpus("--data-dir", str(tmp_path / "data"), *command, "--seed", seed)
        assert result.exit_code == 2 and "Invalid value for '--seed'" in result.stderr, result.output
    assert not (tmp_path / "data").exists()
    from tiktok_corpus.train import TrainConfig

    with pytest.raises(ConfigError, match="--seed must be between 0 and 4294967295, got -1"):
        TrainConfig(tmp_path, seed=-1)


def test_global_options_beat_the_environment(tmp_path):
    from_env, from_flag = tmp_path / "env.db", tmp_path / "flag.db"

    result = corpus("--db", f"sqlite:///{from_flag}", "db", "upgrade", env={"CORPUS_DB_URL": f"sqlite:///{from_env}"})

    assert result.exit_code == 0, result.output
    assert from_flag.exists() and not from_env.exists()
    assert corpus("--data-dir", str(tmp_path / "d"), "db", "upgrade", env={"CORPUS_DB_URL": ""}).exit_code == 0
    assert (tmp_path / "d" / "corpus.db").exists()


@pytest.mark.parametrize("environment", ["ftp://x", ""])
def test_a_bad_or_empty_site_in_the_environment_stops_only_what_reaches_the_site_unnamed(tmp_path, environment):
    """CORPUS_BASE_URL is checked where a site is reached: a command that never reaches one works, and a
    --base-url overrides it (here the crawl goes on to refuse its options); empty means the default."""
    env = {"CORPUS_BASE_URL": environment}
    data = ["--data-dir", str(tmp_path / "data")]
    assert corpus(*data, "db", "upgrade", env=env).exit_code == 0
    assert corpus(*data, "status", env=env).exit_code == 0

    named = corpus(*data, "crawl", "--base-url", "http://127.0.0.1:1", "--seeds", "2", "--max-videos", "1", env=env)
    unnamed = corpus(*data, "crawl", "--seeds", "2", "--max-videos", "1", env=env)

    assert named.stderr == "error: --seeds cannot exceed --max-videos\n"
    assert unnamed.stderr == (
        f"error: the base URL {environment!r} (--base-url or CORPUS_BASE_URL) is not an http(s) address with a "
        "host, like https://www.tiktok.com or http://127.0.0.1:8000\n"
        if environment
        else "error: --seeds cannot exceed --max-videos\n"
    )
    assert Settings(base_url="").base_url == "https://www.tiktok.com"


@pytest.mark.parametrize("command", ["crawl", "track", "download"])
@pytest.mark.parametrize(
    ("proxy", "shown"),
    [
        ("notaurl", "notaurl"),
        ("socks9://x:1", "socks9://x:1"),
        ("http://u:secret@:3128", "http://***@:3128"),
        ("u:secret@proxy.example:3128", "***@proxy.example:3128"),  # no scheme: urlsplit finds no password
        ("http://[x:3128", "http://[x:3128"),  # an unclosed bracket: urlsplit's ValueError was a traceback
    ],
)
def test_a_proxy_that_is_no_proxy_address_is_one_line_without_its_password(tmp_path, command, proxy, shown):
    """--proxy (or CORPUS_PROXY) is checked where the site is reached, before a browser or an HTTP
    client fails on it with a traceback (download raised httpx's ValueError)."""
    result = corpus("--data-dir", str(tmp_path / "data"), command, "--proxy", proxy)

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the proxy {shown!r} (--proxy or CORPUS_PROXY) is not a proxy address like "
        "http://user:pass@host:3128 or socks5://host:1080\n"
    )


@pytest.mark.parametrize("command", [["status"], ["db", "upgrade"], ["db", "current"]])
def test_an_unreachable_database_fails_in_one_line_without_the_password(command):
    """Run as a real process, so nothing (not a traceback either) is hidden by the test runner."""
    url = "postgresql+psycopg://corpus:secret@127.0.0.1:1/x"
    result = subprocess.run(
        [sys.executable, "-c", "from tiktok_corpus.cli import app; app()", "--db", url, *command],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "secret" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: cannot open database postgresql+psycopg://corpus:***@127.0.0.1:1/x")
    assert result.stderr.strip().count("\n") == 0


def test_a_database_that_takes_the_connection_and_never_answers_is_given_up(monkeypatch):
    """A server that accepts and says nothing (or a firewall dropping the packets) held every command for
    good, printing nothing: libpq waited without a connect_timeout."""
    from tiktok_corpus.store import db

    monkeypatch.setitem(db._CONNECT_ARGS, "connect_timeout", 1)  # the same give-up, sooner than the default
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; no one ever answers
        url = f"postgresql+psycopg://corpus:secret@127.0.0.1:{silent.getsockname()[1]}/x"
        result = runner.invoke(app, ["--db", url, "status"])
    assert result.exit_code == 1 and "cannot open database" in result.stderr and "timeout" in result.stderr, (
        result.output
    )
    assert "secret" not in result.output


def boundary_app(error: Exception) -> typer.Typer:
    """A two-command app behind the real error boundary, raising ``error``."""
    probe = typer.Typer(cls=CorpusGroup)

    @probe.command()
    def fail() -> None:
        raise error

    @probe.command()
    def other() -> None:
        """Keeps typer from collapsing the group into a single command."""

    return probe


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (StaleSchemaError, "run `corpus db upgrade`"),
        (ConfigError, "bad proxy [/] http://[::1]:3128 [bold]x"),  # printed verbatim, no markup read into it
    ],
    ids=["stale-schema", "verbatim"],
)
def test_expected_errors_become_one_line_verbatim_and_their_exit_code(error, message):
    result = runner.invoke(boundary_app(error(message)), ["fail"])

    assert (result.exit_code, result.stderr) == (1, f"error: {message}\n")


@pytest.mark.parametrize(
    ("refused", "said"),
    [
        (
            PermissionError(errno.EACCES, "Permission denied", "/corpus/exports/.x"),
            "/corpus/exports/.x: permission denied (",
        ),
        # `exports` a file in the data folder: a FileExistsError traceback when the export was written
        (
            FileExistsError(errno.EEXIST, "File exists", "/corpus/exports"),
            "/corpus/exports: file exists (a file is where",
        ),
    ],
)
def test_a_refused_file_is_one_line_naming_it(refused, said):
    result = runner.invoke(boundary_app(OSError("while writing the export")), ["fail"])
    assert result.exit_code == 1 and isinstance(result.exception, OSError)  # not every OSError is ours

    try:
        raise OSError("while writing the export") from refused
    except OSError as chained:
        result = runner.invoke(boundary_app(chained), ["fail"])

    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: {said}")


@pytest.mark.parametrize(
    ("command", "said"),
    [("crawl", "the same command goes on"), ("report", "no new page was written"), ("browse", None)],
)
def test_ctrl_c_exits_130_saying_how_to_go_on_where_there_is_a_way(command, said):
    probe = typer.Typer(cls=CorpusGroup)

    @probe.command(name=command)
    def interrupted(as_json: bool = typer.Option(False, "--json")) -> None:
        raise KeyboardInterrupt

    @probe.command()
    def other() -> None:
        """Keeps typer from collapsing the group into a single command."""

    result = runner.invoke(probe, [command])

    assert result.exit_code == 130
    assert (said in result.stderr) if said else result.stderr == ""
    assert result.stdout == ""
    scripted = runner.invoke(probe, [command, "--json"])  # a script gets a document, as for an error
    assert (scripted.exit_code, scripted.stderr) == (130, result.stderr)
    message = result.stderr.strip() if said else "interrupted"
    assert json.loads(scripted.stdout) == {"error": "interrupted", "exit_code": 130, "message": message}


def test_predict_takes_json_so_a_script_reads_why_it_stopped(tmp_path):
    """Its lines are JSON already, but an error that stops it (a gbdt run) reached stderr only."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "gbdt"}))
    result = corpus("predict", str(tmp_path / "x.mp4"), "--run", str(run), "--json")
    document = json.loads(result.stdout)
    assert result.exit_code == 1 and document["error"] == "config" and "is a gbdt run" in document["message"]


def test_a_commands_own_ctrl_c_hint_reaches_its_json_document():
    """train and features word their hint themselves (where the run stands): --json gave "interrupted"."""
    probe = typer.Typer(cls=CorpusGroup)

    @probe.command()
    def train(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
        say_interrupted(ctx, "run kept; `corpus train --resume` goes on")
        raise KeyboardInterrupt

    @probe.command()
    def other() -> None:
        """Keeps typer from collapsing the group into a single command."""

    scripted = runner.invoke(probe, ["train", "--json"])
    assert scripted.exit_code == 130 and scripted.stderr == "interrupted: run kept; `corpus train --resume` goes on\n"
    assert json.loads(scripted.stdout)["message"] == "interrupted: run kept; `corpus train --resume` goes on"


def test_ctrl_c_while_the_cli_loads_exits_130_without_a_traceback():
    """The ``corpus`` script's first second is imports: a Ctrl-C there ends like one in a command."""
    interrupt_the_load = (
        "import builtins, sys\n"
        "real_import = builtins.__import__\n"
        "def interrupted(name, *args, **kwargs):\n"
        "    if name == 'cli':  # __main__'s `from .cli import app`\n"
        "        raise KeyboardInterrupt\n"
        "    return real_import(name, *args, **kwargs)\n"
        "builtins.__import__ = interrupted\n"
        "from tiktok_corpus.__main__ import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", interrupt_the_load], capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stderr) == (130, "")


def test_unexpected_errors_keep_their_traceback():
    result = runner.invoke(boundary_app(CorpusError("a bug", expected=False)), ["fail"])

    assert result.exit_code == 1
    assert isinstance(result.exception, CorpusError)


def test_damaged_records_are_one_line_errors_not_tracebacks(tmp_path):
    """A manifest cut short or of the wrong shape, a damaged metrics.json and a damaged checkpoint."""
    export, run, video = tmp_path / "export", tmp_path / "run", tmp_path / "clip.mp4"
    export.mkdir()
    run.mkdir()
    video.write_bytes(b"\x00" * 64)
    (run / "best.pt").write_text("garbage\n")
    data_dir = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, [*data_dir, "db", "upgrade"]).exit_code == 0
    for text, said in (('{"name": ', "is corrupt: not JSON"), ("[]", "is corrupt: a JSON list, not an object")):
        (export / "manifest.json").write_text(text)
        result = runner.invoke(app, [*data_dir, "report", "--export", str(export)])
        assert result.exit_code == 1 and said in result.stderr and "Traceback" not in result.output
    result = runner.invoke(app, ["predict", str(video), "--run", str(run), "--device", "cpu"])
    assert result.exit_code == 1 and "best.pt is not a readable checkpoint" in result.stderr
    import torch  # here: the other CLI tests do without its import

    torch.save({"foo": 1}, run / "best.pt")  # readable, but no run's: KeyError 'config'
    result = runner.invoke(app, ["predict", str(video), "--run", str(run), "--device", "cpu"])
    assert result.exit_code == 1 and "best.pt is no checkpoint of `corpus train`" in result.stderr
    (run / "metrics.json").write_text("{")
    result = runner.invoke(app, [*data_dir, "report", "--run", str(run)])
    assert result.exit_code == 1 and "metrics.json is corrupt" in result.stderr and "Traceback" not in result.output


def test_an_export_from_a_newer_version_is_refused_in_one_line(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "manifest.json").write_text(json.dumps({"format_version": 99, "name": "corpus"}))
    data_dir = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, [*data_dir, "db", "upgrade"]).exit_code == 0

    for command in (["report", "--export", str(export)], ["features", str(export)]):
        result = runner.invoke(app, [*data_dir, *command])
        assert result.exit_code == 1 and "exported by a newer tiktok-corpus" in result.stderr, result.output


def test_a_file_given_as_the_data_dir_is_a_one_line_error(tmp_path):
    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    result = runner.invoke(app, ["--data-dir", str(taken), "db", "upgrade"])
    assert result.exit_code == 1 and "cannot make the database's folder" in result.stderr
    assert "Traceback" not in result.output and taken.read_text() == "not a folder"


def test_track_with_nothing_due_opens_no_browser_and_sends_no_request(tmp_path):
    """An empty corpus: nothing is due, so the run ends at once, without starting Chromium or reaching the
    site (port 9 of this machine: nothing listens there, a request would fail the run)."""
    data_dir = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, [*data_dir, "db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, [*data_dir, "track", "--base-url", "http://127.0.0.1:9", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "done" and summary["observations"] == 0 and summary["blocks"] == 0


def test_report_refuses_an_out_it_cannot_write_before_any_work(tmp_path):
    data_dir = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, [*data_dir, "db", "upgrade"]).exit_code == 0
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out, said in ((tmp_path, "is a folder"), (a_file / "report.html", "cannot make its folder")):
        result = runner.invoke(app, [*data_dir, "report", "--out", str(out)])
        assert result.exit_code == 1 and said in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "data"]  # no half-written page, no figures
    (tmp_path / "data" / "report").write_text("x")  # the data dir's own page, with no --out to blame
    result = runner.invoke(app, [*data_dir, "report"])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 1 and "--out" not in said.split("(in the data dir;")[0], said
    assert f"the report page {tmp_path / 'data' / 'report' / 'report.html'} (in the data dir" in said, said


def test_upgrading_to_an_older_revision_says_it_did_not_go_back(tmp_path):
    data_dir = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, [*data_dir, "db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, [*data_dir, "db", "upgrade", "0003"])
    assert result.exit_code == 0 and f"is at schema {head_revision()} (0003 is older" in result.stdout


def test_an_unknown_schema_revision_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["--data-dir", str(tmp_path / "data"), "db", "upgrade", "nosuchrev"])
    assert result.exit_code == 1 and "cannot upgrade to 'nosuchrev'" in result.stderr
    assert "Traceback" not in result.output


def test_the_commands_over_a_recorded_corpus_make_no_database_at_a_mistyped_path(tmp_path):
    """The readers, and the stages that work on what a crawl recorded: an empty database made at a
    mistyped path would have them report success, having done nothing."""
    mistyped = tmp_path / "no-such-corpus"
    readers = (["status"], ["report"], ["browse", "--port", "0", "--no-posters"], ["db", "current"])
    for command in (*readers, ["download"], ["validate"], ["track"]):
        result = runner.invoke(app, ["--data-dir", str(mistyped), *command])
        assert result.exit_code == 1 and "no corpus database at" in result.stderr, (command, result.output)
    assert not mistyped.exists()


def test_the_reading_commands_do_not_migrate_an_empty_database_file(tmp_path):
    """An empty file (a failed first upgrade, a touch) is not a corpus: status says to migrate it."""
    (tmp_path / "corpus.db").touch()
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "status"])
    assert result.exit_code == 1 and "is at schema none" in result.stderr and "corpus db upgrade" in result.stderr


@pytest.mark.parametrize("command", [["predict", "v.mp4", "--run", "run"], ["train", "export"], ["features", "export"]])
def test_every_command_with_a_device_refuses_an_unknown_one_alike(command, tmp_path):
    """One list of devices, one message, before any file is read."""
    result = corpus(*command, "--device", "tpu")
    assert result.exit_code == 1, result.output
    assert result.output.strip() == "error: --device must be one of auto, cpu, cuda, got 'tpu'"


def test_demo_refuses_a_catalog_smaller_than_the_crawl_s_seeds_before_any_work(tmp_path):
    result = corpus("demo", "--videos", "39", "--out", str(tmp_path / "demo"))
    assert result.exit_code == 1
    assert result.output.strip() == "error: --videos must be at least 40 (got 39): the crawl starts from 25 seeds"
    assert not (tmp_path / "demo").exists()
    assert "(at least 40)" in " ".join(corpus("demo", "--help").output.replace("│", " ").split())
    assert DEMO_MIN_VIDEOS > CrawlOptions.seeds  # the minimum is written as a number: it must outgrow the seeds


@pytest.mark.parametrize("command", ["crawl", "track", "download"])
def test_the_commands_that_reach_the_site_take_its_url_and_a_proxy_alike(command):
    result = corpus(command, "--help", env={"COLUMNS": "250"})

    assert result.exit_code == 0, result.output
    lines = {line for line in result.output.splitlines() if "--base-url" in line or "--proxy" in line}
    assert any("--base-url" in line and "(env CORPUS_BASE_URL; default " in line for line in lines), lines
    assert any("--proxy" in line and "(env CORPUS_PROXY)" in line for line in lines), lines


@pytest.mark.parametrize(
    "command",
    [
        ["demo", "--out", "{file}"],
        ["train", "{export}", "--out", "{file}"],
        ["train", "{export}", "--cache-dir", "{file}"],
        ["ablate", "{export}", "--out", "{file}"],
        ["features", "{export}", "--cache-dir", "{file}"],
    ],
    ids=["demo", "train", "train-cache", "ablate", "features"],
)
@pytest.mark.parametrize("below", ["", "sub/folder"], ids=["at-it", "below-it"])
def test_a_file_where_a_folder_is_written_is_refused_before_any_work(tmp_path, command, below):
    """--out and --cache-dir name folders: a file there, or where a folder above it would be, was a
    FileExistsError or NotADirectoryError traceback, for train and ablate only after the model was fitted."""
    file = tmp_path / "afile"
    file.write_text("kept")
    given = [part.format(file=file / below if below else file, export=tmp_path / "no-export") for part in command]

    result = corpus(*given)

    said = "".join(result.stderr.replace("│", " ").split())  # rich's box wraps the line where it likes
    assert result.exit_code == 2 and "afileisafile" in said and "giveafolder" in said, result.stderr
    assert file.read_text() == "kept" and not (tmp_path / "no-export").exists()


def test_the_live_crawl_line_in_a_log_or_a_narrow_terminal_keeps_every_number():
    """Where stderr is no terminal (a log, docker, CI) rich draws at 80 columns: the crawl's last line was
    cut to ``c… corpus: 30/30 videos, 34 items of all kinds, 5 seeds; this run: 34 new item…``, its name
    and this run's numbers lost. The details wrap instead."""
    from io import StringIO

    from rich.console import Console

    from tiktok_corpus.cli.display import LiveCrawlDisplay
    from tiktok_corpus.crawl import CrawlCounters

    log = StringIO()
    counters = CrawlCounters(videos=30, items=34, target=30, seeds=5, new_items=34, expansions=5, edges=47)
    counters.methods["fetch"] = 5
    with LiveCrawlDisplay(Console(file=log, width=80)) as display:
        display.update(counters)
    words = " ".join(log.getvalue().split())

    assert words.startswith("crawl ") and "…" not in words, log.getvalue()
    assert "this run: 34 new items, 5 expansions (via fetch 5), 47 edges" in words, log.getvalue()
    assert "blocks 0, 0.00 new/s" in words, log.getvalue()


@pytest.mark.parametrize("command", [["status"], ["db", "upgrade"], ["db", "current"], ["validate"]])
def test_a_sqlite_url_naming_a_folder_says_so_and_what_to_give(tmp_path, command):
    """``--db sqlite:///data``, the data dir meant: status said there was no database, the others passed on
    SQLite's "unable to open database file"."""
    folder = tmp_path / "data"
    folder.mkdir()

    result = corpus("--db", f"sqlite:///{folder}", *command)

    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (
        f"error: {folder} is a folder, not a database file: give --db sqlite:///{folder / 'corpus.db'}, "
        f"or --data-dir {folder}"
    )
    assert list(folder.iterdir()) == []
