"""What `jutsu` prints: quiet runs with a progress bar and a summary, errors once as one paragraph."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef
from dotenv import dotenv_values
from rich.console import Console

from jutsu_pipeline.assets.bars.assets import bars_asset_key
from jutsu_pipeline.cli import DOTENV_MARKER, write_dotenv
from jutsu_pipeline.config import ConfigError, load_config
from jutsu_pipeline.console import SyncConsole, paragraph, root_message
from jutsu_pipeline.definitions import bars_job_name, build_definitions
from jutsu_pipeline.partitions import BarsPartitioning
from jutsu_pipeline.sync.planner import RANGE_END_TAG, RANGE_START_TAG
from jutsu_pipeline.timeframes import Timeframe
from jutsu_pipeline_tests.conftest import fresh_home, write_config
from jutsu_pipeline_tests.helpers import run_bars

REPO = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
SMALL_MARKET = {"provider": "sample", "calendar": "XNYS", "timeframes": ["1d"], "start": "2012-01-01",
                "end": "2012-03-01", "symbols": ["IBM", "MSFT"]}


def _jutsu(tmp_path: Path, *args: str, config: Path | None = None, program: str | None = None
           ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "JUTSU_VERBOSE")}
    env.update(JUTSU_CONFIG=str(config or tmp_path / "jutsu.yaml"), DAGSTER_HOME=str(tmp_path / "home"),
               PYTHONWARNINGS="default")  # any warning that reaches the user shows up in stderr
    if not (tmp_path / "home").exists():
        fresh_home(tmp_path)
    return subprocess.run([program or str(BIN / "jutsu"), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow  # two `jutsu sync` processes, the whole chain of runs (end-to-end)
def test_sync_is_quiet_shows_a_plan_a_line_per_run_and_a_summary(tmp_path: Path) -> None:
    write_config(tmp_path, {"us_stocks": SMALL_MARKET})
    first = _jutsu(tmp_path, "sync")
    assert first.returncode == 0, first.stderr
    out = first.stdout.splitlines()
    assert out[0] == "us_stocks/bars_1d: 2 of 2 partitions to sync in 1 run(s)."  # one year x 2 symbols
    assert any(line.startswith("  us_stocks/bars_1d 2012-01-01|IBM...2012-01-01|MSFT: done in ") for line in out)
    # The bars run, then the runs Dagster's automation evaluation requests downstream (corporate actions,
    # then the indicators that read them).
    assert "Summary: 4 run(s)" in first.stdout and "2 bars partition(s) recorded" in first.stdout
    # The bars run's line has the run's totals (its summary record), not one partition's facts.
    bars_line = next(line for line in out if line.startswith("  us_stocks/bars_1d "))
    assert "2 partitions with bars" in bars_line and "2 provider calls" in bars_line, bars_line
    assert "Checks: 4 of 4 passed." in first.stdout
    assert any(line.startswith("us_stocks/report: open file://") for line in out), out  # the page, built once
    assert sum(line.startswith("  us_stocks/report: done") for line in out) == 1, out
    assert len(out) <= 11, first.stdout  # no Dagster event log on the terminal
    assert "DEBUG" not in first.stdout + first.stderr and "RUN_START" not in first.stdout
    assert "Warning" not in first.stderr, first.stderr  # Beta/Supersession notices are filtered
    again = _jutsu(tmp_path, "sync")
    assert again.returncode == 0 and "all 2 partitions are materialised and final; nothing to fetch." in again.stdout
    # Nothing happened since that evaluation requested nothing: the third decides it without loading the
    # definitions (asset modules, pandera, the sync engine).
    probe = "import sys\nfrom jutsu_pipeline.cli import main\ncode = main(['sync'])\n" \
            "print(code, sorted(m for m in ('jutsu_pipeline.definitions', 'jutsu_pipeline.assets.bars', 'pandera') " \
            "if m in sys.modules))"
    third = _jutsu(tmp_path, "-c", probe, program=sys.executable)
    assert third.returncode == 0, third.stderr
    assert third.stdout.splitlines()[-2:] == ["Downstream (indicators, backtests, leaderboards): up to date.", "0 []"]


def test_a_failed_sync_prints_its_error_once_as_one_paragraph(tmp_path: Path) -> None:
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "IBM.csv").write_text(  # high < low on one day: an error under every profile but lenient
        "date,open,high,low,close,volume\n2012-01-03,186.7,189.0,186.0,186.3,5646000\n"
        "2012-01-04,185.6,184.0,186.5,185.5,4346700\n")
    market = {**SMALL_MARKET, "provider": "files", "options": {"path": "csv"}, "symbols": ["IBM"],
              "end": "2012-01-31"}
    write_config(tmp_path, {"us_stocks": market})
    result = _jutsu(tmp_path, "sync")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("jutsu: ") and "Traceback" not in result.stderr
    assert "2012-01-01|IBM" in errors[0] and "high_ge_low" in errors[0] and "re-materialise" in errors[0]
    assert "us_stocks/bars_1d" in result.stdout and "FAILED" in result.stdout and "1 failed." in result.stdout
    # Nothing was stored: the checks had nothing to judge, and the summary says so instead of "4 of 4 passed".
    assert "Checks: nothing to check, this sync stored no bars (its bars runs failed); 4 check(s) judged 0 bars." \
        in result.stdout.splitlines(), result.stdout


@pytest.fixture
def no_alpaca_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "APCA_API_KEY_ID_FILE", "APCA_API_SECRET_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)


ALPACA_MARKET = {**SMALL_MARKET, "provider": "alpaca"}
ALPACA_MESSAGE = (
    "market us_stocks (provider alpaca) needs APCA_API_KEY_ID (Alpaca API key id) and APCA_API_SECRET_KEY (Alpaca "
    "API secret key), which are not set. Export them where jutsu and Dagster run (or set APCA_API_KEY_ID_FILE and "
    "APCA_API_SECRET_KEY_FILE to a file holding each) and sync again; how to get them: docs/providers.md#alpaca.")


def test_missing_alpaca_keys_name_the_variables_and_the_market_before_anything_runs(
        tmp_path: Path, no_alpaca_keys, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    write_config(tmp_path, {"us_stocks": ALPACA_MARKET})
    result = _jutsu(tmp_path, "sync")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"jutsu: {ALPACA_MESSAGE}\n"  # no class path, no traceback
    (tmp_path / "key").write_text("AKTEST\n")  # a variable's _FILE counts: only the secret is missing then
    monkeypatch.setenv("APCA_API_KEY_ID_FILE", str(tmp_path / "key"))
    second = _jutsu(tmp_path, "sync")
    assert second.returncode == 2, second.stderr
    assert "needs APCA_API_SECRET_KEY (Alpaca API secret key), which is not set" in second.stderr
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "home"))) as instance:
        assert instance.get_runs() == []  # nothing was attempted or recorded


def test_missing_keys_fail_a_dagster_run_with_the_same_message(tmp_path: Path, instance, no_alpaca_keys) -> None:  # noqa: ANN001
    config = load_config(write_config(tmp_path, {"us_stocks": ALPACA_MARKET}))
    result = run_bars(config, instance, key="2012-01-01|IBM")  # as `dagster asset materialize` or a schedule would
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").event_specific_data
    assert failure.user_failure_data.description == ALPACA_MESSAGE  # what the UI and `jutsu` show, whole


def test_progress_bar_from_run_events_and_event_log_only_when_verbose(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    monthly = {**SMALL_MARKET, "symbols": ["IBM"], "partition_grain": {"1d": "month"}}  # three partitions to count
    config = load_config(write_config(tmp_path, {"us_stocks": monthly}))
    partitioning = BarsPartitioning("us_stocks", Timeframe("1d"), config.markets["us_stocks"])
    job = build_definitions(config).resolve_job_def(bars_job_name(partitioning))
    tags = {RANGE_START_TAG: "2012-01-01|IBM", RANGE_END_TAG: "2012-03-01|IBM"}
    buffer = io.StringIO()
    console = SyncConsole(verbose=False, console=Console(file=buffer, force_terminal=True, width=120))
    with dg.DagsterInstance.ephemeral() as instance:
        report = console.run(job, instance, tags, bars_asset_key("us_stocks", "1d"), "Jan...Mar")
        assert report.success and report.partitions == 3
        with duckdb.connect(str(config.database), read_only=True) as con:
            assert report.bars == con.execute("SELECT count(*) FROM bars").fetchone()[0] > 0
        assert [check for check, passed, *_ in report.checks if passed] and len(report.checks) == 4
        assert all(rows for *_, rows in report.checks), report.checks  # each judged the stored bars
        screen = buffer.getvalue()
        assert "3/3 partitions" in screen and "1/1 sym" in screen  # the live bar, drawn on a terminal
        assert "RUN_START" not in screen
        logged = {e.dagster_event_type for e in instance.all_logs(report.run_id) if e.is_dagster_event}
        assert dg.DagsterEventType.RUN_START in logged, "the event log still goes to the instance"
        assert dg.DagsterEventType.ASSET_MATERIALIZATION in logged
        verbose = SyncConsole(verbose=True, console=Console(file=io.StringIO()))
        capsys.readouterr()
        verbose.run(job, instance, tags, bars_asset_key("us_stocks", "1d"), "Jan...Mar")
        assert "RUN_START" in capsys.readouterr().err  # Dagster's console logger writes to stderr


def test_root_message_unwraps_dagster_errors() -> None:
    try:
        raise RuntimeError("while executing op") from ValueError("symbol XYZ: bad file /d/XYZ.csv")
    except RuntimeError as error:
        info = dg._utils.error.serializable_error_info_from_exc_info((type(error), error, error.__traceback__))  # noqa: SLF001
        assert root_message(error) == "symbol XYZ: bad file /d/XYZ.csv"
        assert root_message(info) == "symbol XYZ: bad file /d/XYZ.csv"
    assert paragraph("a\nb\n") == "a b"
    assert paragraph("file is invalid:\n  key: bad\n  other: bad") == "file is invalid:\n  key: bad\n  other: bad"


def test_a_bad_date_in_the_config_names_file_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"us_stocks": SMALL_MARKET})
    path.write_text(path.read_text().replace("start: '2012-01-01'", "start: 2012-13-01"))
    assert "2012-13-01" in path.read_text()
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(path) in str(raised.value) and "markets.us_stocks.start" in str(raised.value)
    result = _jutsu(tmp_path, "coverage")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"jutsu: {path} is invalid:\n  markets.us_stocks.start: ")


def test_dagster_cli_reports_a_config_error_without_the_loader_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"us_stocks": {**SMALL_MARKET, "calendar": "XNYZ"}})
    env = {**os.environ, "JUTSU_CONFIG": str(path), "DAGSTER_HOME": str(tmp_path)}
    env.pop("JUTSU_VERBOSE", None)
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "jutsu_pipeline.definitions",
         "--select", "us_stocks/bars_1d", "--partition", "2012-01-01|IBM"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert f"jutsu: {path} is invalid:\n  markets.us_stocks.calendar: unknown calendar 'XNYZ'" in result.stderr
    assert len(result.stderr.splitlines()) <= 8, result.stderr


def test_coverage_on_a_file_open_for_writing_names_the_holder(tmp_path: Path) -> None:
    write_config(tmp_path, {"us_stocks": SMALL_MARKET})
    hold = "import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1])\nprint('locked', flush=True)\ntime.sleep(60)\n"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(tmp_path / "jutsu.duckdb")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = _jutsu(tmp_path, "coverage")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"PID {holder.pid}" in result.stderr or f"process {holder.pid}" in result.stderr
    assert "jutsu sql" in result.stderr and str(tmp_path / "jutsu.duckdb") in result.stderr


def test_jutsu_sql_prints_rows_and_reports_bad_sql_in_one_line(tmp_path: Path) -> None:
    write_config(tmp_path, {"us_stocks": SMALL_MARKET})
    with duckdb.connect(str(tmp_path / "jutsu.duckdb")) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS a, 'x' AS b")
    good = _jutsu(tmp_path, "sql", "SELECT a, b FROM t")
    assert good.returncode == 0 and good.stdout.splitlines() == ["a  b", "1  x"]
    bad = _jutsu(tmp_path, "sql", "SELECT nope FROM t")
    assert bad.returncode == 1 and bad.stderr.startswith("jutsu: ") and "nope" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_jutsu_sql_on_a_ducklake_has_the_views_and_macros(tmp_path: Path) -> None:
    """DuckLake stores no macros: `jutsu sql` creates them for its connection, so `bars_adjusted` (a view
    over a macro) and the point-in-time macros answer there as on a DuckDB file."""
    from jutsu_pipeline_tests.lake import file_lake

    write_config(tmp_path, {"us_stocks": SMALL_MARKET}, storage=file_lake(tmp_path))
    # The tables as the first sync creates them, in another process (a catalog file is held by one process).
    setup = ("from jutsu_pipeline.config import load_config; from jutsu_pipeline.resources import JutsuDuckDBResource; "
             "from jutsu_pipeline.storage.ddl import ensure_schema\n"
             "with JutsuDuckDBResource.for_config(load_config()).get_connection() as con: ensure_schema(con)")
    assert _jutsu(tmp_path, "-c", setup, program=sys.executable).returncode == 0
    for sql in ("SELECT count(*) AS n FROM bars_adjusted", "SELECT count(*) AS n FROM bars_as_of(now())"):
        result = _jutsu(tmp_path, "sql", sql)
        assert result.returncode == 0 and result.stdout.splitlines() == ["n", "0"], (sql, result.stderr)


def test_instance_dir_env_wins_else_config_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "conf" / "jutsu.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"dagster_home": "state/dagster", "markets": {"us_stocks": SMALL_MARKET}}))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert load_config(path).instance_dir == tmp_path / "conf" / "state" / "dagster"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", "elsewhere")
    assert load_config(path).instance_dir == tmp_path / "elsewhere"  # relative: from the working directory


def test_dotenv_points_dagster_at_the_instance_unless_the_environment_says_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUTSU_CONFIG", str(write_config(tmp_path, {"us_stocks": SMALL_MARKET})))
    dotenv = tmp_path / ".env"
    dotenv.write_text("MY_KEY=1\n")
    assert write_dotenv(dotenv) == 0 and write_dotenv(dotenv) == 0  # idempotent
    text = dotenv.read_text()
    assert text.count(DOTENV_MARKER) == 1 and text.startswith("MY_KEY=1\n")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert dotenv_values(dotenv)["DAGSTER_HOME"] == str(tmp_path / "data" / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", "/mine")
    assert dotenv_values(dotenv)["DAGSTER_HOME"] == "/mine"
    dotenv.write_text("DAGSTER_HOME=/theirs\n")
    assert write_dotenv(dotenv) == 0 and dotenv.read_text() == "DAGSTER_HOME=/theirs\n"


def test_definitions_import_without_third_party_notices() -> None:
    result = subprocess.run([sys.executable, "-W", "always", "-c", "import jutsu_pipeline.definitions"],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"})
    assert result.returncode == 0, result.stderr
    assert "BetaWarning" not in result.stderr and "SupersessionWarning" not in result.stderr, result.stderr


def test_an_unpartitioned_asset_is_named_once_on_its_run_line() -> None:
    """`us_stocks/report: done in ...`, not `us_stocks/report us_stocks/report: done in ...`."""

    @dg.asset(key=["desk", "report"])
    def page() -> None:
        return None

    job = dg.Definitions(assets=[page]).resolve_implicit_global_asset_job_def()
    buffer = io.StringIO()
    console = SyncConsole(verbose=False, console=Console(file=buffer, width=120))
    with dg.DagsterInstance.ephemeral() as instance:
        report = console.run(job, instance, {}, page.key, page.key.to_user_string())
    assert report.success
    assert "  desk/report: done in " in buffer.getvalue() and "desk/report desk/report" not in buffer.getvalue()


def test_each_subcommands_help_says_what_it_does_and_its_options(capsys) -> None:  # noqa: ANN001
    from jutsu_pipeline.cli import main

    with pytest.raises(SystemExit):
        main(["sync", "--help"])
    shown = capsys.readouterr().out
    assert "materialise every missing partition of the bars assets" in shown
    assert "only this market of jutsu.yaml" in shown and "only this timeframe, e.g. 1d" in shown


def test_leaderboard_without_strategies_says_how_to_get_backtests(tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from jutsu_pipeline.cli import main

    monkeypatch.setenv("JUTSU_CONFIG", str(write_config(tmp_path, {"us_stocks": SMALL_MARKET})))
    assert main(["leaderboard"]) == 0
    assert "No market configures `strategies:`" in capsys.readouterr().out


def test_jutsu_sql_keeps_duckdbs_did_you_mean_hint(tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from jutsu_pipeline.cli import main

    monkeypatch.setenv("JUTSU_CONFIG", str(write_config(tmp_path, {"us_stocks": SMALL_MARKET})))
    with duckdb.connect(str(tmp_path / "jutsu.duckdb")) as con:
        con.execute("CREATE TABLE bars AS SELECT 1 AS a")
    assert main(["sql", "SELECT * FROM bar"]) == 1
    err = capsys.readouterr().err
    assert 'Did you mean "bars"?' in err and len(err.strip().splitlines()) == 1


def test_jutsu_report_names_the_page_once_and_where_to_open_it(tmp_path: Path) -> None:
    """`us_stocks/report: done in ...`, then the file to open; not `us_stocks/report us_stocks: ...`."""
    write_config(tmp_path, {"us_stocks": SMALL_MARKET})
    result = _jutsu(tmp_path, "report")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("  us_stocks/report: done in ") for line in lines), lines
    assert "us_stocks/report us_stocks" not in result.stdout
    assert any(line.startswith(f"us_stocks/report: open {tmp_path.as_uri()}/") and line.endswith("/us_stocks/report.html")
               for line in lines), lines
