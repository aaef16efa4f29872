"""Cost of the cheap paths, each beside a baseline measured in the same run (fresh processes, best of N).

- `jutsu coverage` against `python -c "import duckdb"` and the bare coverage query on the same file;
- `jutsu sync` with nothing to do (the first one evaluates Dagster's automation, the next ones know nothing
  happened since) against `python -c "import dagster"`;
- the definitions of a 500-symbol x 10-year 1m market (default grain: quarters, 20,000 partitions),
  as a code server loads them, against `python -c "import dagster"`;
- where the steady no-op sync's and the definitions' imports go (`python -X importtime`, self time summed
  per top-level package, and the share of the whole: less load-dependent than the wall times).

The sample market is synced once first (shipped instance class, temporary DAGSTER_HOME and DuckDB file).
Run: .venv/bin/python benchmarks/bench_cli.py [repeats]      (default 3)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def _wall(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Best wall time of `command` over REPEATS fresh processes."""
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
        best = min(best, time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return best


def _imports(command: list[str], env: dict[str, str], cwd: Path, top: int = 8) -> str:
    """`python -X importtime` of `command`: total import time and the packages taking the most of it."""
    result = subprocess.run([sys.executable, "-X", "importtime", *command], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=900)
    per_package: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line.removeprefix("import time:").split("|")
            package = name.strip().split(".")[0]
            per_package[package] = per_package.get(package, 0) + int(own)
    total = sum(per_package.values())
    ranked = sorted(per_package.items(), key=lambda item: -item[1])[:top]
    return f"{total / 1e6:.2f} s of imports: " + ", ".join(f"{name} {us / total:.0%}" for name, us in ranked)


def _row(label: str, seconds: float, baseline: float, target: str) -> None:
    print(f"  {label:<52} {seconds:7.2f} s  {seconds / baseline:5.1f}x baseline  (target {target})")


def main() -> None:
    print(f"bench_cli: load average {os.getloadavg()[0]:.1f} at start, best of {REPEATS} fresh processes")
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp:
        folder = Path(tmp)
        home = folder / "home"
        home.mkdir()
        shutil.copy(REPO / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        shipped = yaml.safe_load((REPO / "jutsu.yaml").read_text())
        config = folder / "jutsu.yaml"
        config.write_text(yaml.safe_dump({"duckdb_path": str(folder / "jutsu.duckdb"), "markets": shipped["markets"]}))
        env = {**os.environ, "JUTSU_CONFIG": str(config), "DAGSTER_HOME": str(home)}
        env.pop("JUTSU_VERBOSE", None)
        started = time.perf_counter()
        subprocess.run([str(BIN / "jutsu"), "sync"], env=env, cwd=folder, check=True, capture_output=True, timeout=1800)
        print(f"  (first sync of the sample market, 70 yearly partitions and downstream: "
              f"{time.perf_counter() - started:.1f} s)")

        python = [sys.executable, "-c"]
        import_duckdb = _wall([*python, "import duckdb"], env, folder)
        query = (f"import duckdb; duckdb.connect({str(folder / 'jutsu.duckdb')!r}, read_only=True)"
                 ".execute('SELECT * FROM coverage ORDER BY timeframe, symbol').fetchall()")
        bare_query = _wall([*python, query], env, folder)
        import_dagster = _wall([*python, "import dagster"], env, folder)
        print("Baselines")
        for label, seconds in (('python -c "import duckdb"', import_duckdb),
                               ("the bare coverage query (duckdb, read-only)", bare_query),
                               ('python -c "import dagster"', import_dagster)):
            print(f"  {label:<52} {seconds:7.2f} s")

        print("jutsu")
        coverage = _wall([str(BIN / "jutsu"), "coverage"], env, folder)
        _row("jutsu coverage", coverage, bare_query, "<= 1 s")
        # The first sync's downstream runs recorded events: the next sync evaluates Dagster's automation once
        # (it requests nothing and is remembered); every later one is the steady state.
        started = time.perf_counter()
        subprocess.run([str(BIN / "jutsu"), "sync"], env=env, cwd=folder, check=True, capture_output=True, timeout=900)
        evaluating = time.perf_counter() - started
        steady = _wall([str(BIN / "jutsu"), "sync"], env, folder)
        _row("jutsu sync, nothing to do (steady state)", steady, import_dagster, "<= 3 s")
        print(f"  {'  (its first run after the sync, which evaluated)':<52} {evaluating:7.2f} s")
        print(f"    no-op sync: {_imports(['-m', 'jutsu_pipeline.cli', 'sync'], env, folder)}")

        big = folder / "big.yaml"
        market = {"provider": "files", "options": {"path": str(folder / "files")}, "calendar": "XNYS",
                  "timeframes": ["1m"], "start": "2015-01-02", "end": "2024-12-31",
                  "symbols": [f"S{i:03d}" for i in range(500)]}
        big.write_text(yaml.safe_dump({"duckdb_path": str(folder / "big.duckdb"), "markets": {"big": market}}))
        # As a code server loads them: import the module (which builds them) and resolve the repository.
        load = "from jutsu_pipeline.definitions import defs; defs.get_repository_def()"
        big_env = {**env, "JUTSU_CONFIG": str(big)}
        definitions = _wall([*python, load], big_env, folder)
        # The modules imported with the small sample configuration first, then the large one read and built.
        build = ("import time, dagster, jutsu_pipeline.definitions as d; from jutsu_pipeline.config import load_config; "
                 f"t = time.perf_counter(); c = load_config({str(big)!r}); defs = d.build_definitions(c); "
                 "defs.get_repository_def(); "
                 "print(time.perf_counter() - t, len(d.bars_partitionings(c)[0].all_partition_keys()))")
        built = [subprocess.run([*python, build], env=env, cwd=folder, capture_output=True, text=True,
                                check=True).stdout.split() for _ in range(REPEATS)]
        partitions = int(built[0][1])
        _row(f"definitions, 500 x 10 y of 1m ({partitions:,} partitions)", definitions, import_dagster, "<= 3 s")
        print(f"  {'  of which reading and building them (modules imported)':<52} {min(float(b[0]) for b in built):7.2f} s")
        print(f"    definitions: {_imports(['-c', load], big_env, folder)}")
    print(f"bench_cli: load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
