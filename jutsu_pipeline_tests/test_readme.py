"""Every shell command of README.md runs as written in a fresh clone (reusing this virtualenv)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

REPO = Path(__file__).parents[1]
VENV = Path(sys.prefix)
# Not run here, with the reason: the suite itself, and a server that runs until stopped (its start is
# tested in test_dagster_dev.py; here `make -n dev` checks the target resolves).
NOT_RUN = {"make test": "this test is part of it", "make dev": "a server; see test_dagster_dev.py"}


def readme_commands(markdown: str) -> list[str]:
    """The commands of the ```sh blocks, continuation lines joined, comment-only lines dropped."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S):
        for command in re.sub(r"\\\n\s*", "", block).splitlines():
            command = re.sub(r"\s+#[^'\"]*$", "", command).strip()  # a trailing comment (no quotes in it)
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def _clone(target: Path) -> None:
    """`git clone` of this repository, plus the working tree's uncommitted changes (none in CI)."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True, timeout=120)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    for line in status.splitlines():
        path = line[3:].split(" -> ")[-1]
        if (REPO / path).is_file():
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / path, target / path)
        elif (target / path).exists() and not (REPO / path).exists():
            (target / path).unlink()


def _environment(clone: Path) -> dict[str, str]:
    drop = {"DAGSTER_HOME", "JUTSU_CONFIG", "JUTSU_VERBOSE", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
            "PYTHONWARNINGS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = str(clone)  # the clone's code, not the editable install's
    return env


@pytest.mark.slow
def test_readme_commands_run_verbatim_in_a_fresh_clone(tmp_path: Path) -> None:
    stamp = VENV / ".installed-runtime"
    assert stamp.exists(), "run `make install` (or `make test`) first: this test reuses its virtualenv"
    clone = tmp_path / "clone"
    _clone(clone)
    (clone / ".venv").symlink_to(VENV, target_is_directory=True)
    for name in ("pyproject.toml", "jutsu.yaml"):  # older than the venv's stamp: make reuses the venv
        os.utime(clone / name, (stamp.stat().st_mtime - 60, stamp.stat().st_mtime - 60))
    env = _environment(clone)

    commands = readme_commands((clone / "README.md").read_text())
    assert commands[:2] == ["make demo", "make test"] and "make dev" in commands
    outputs: dict[str, subprocess.CompletedProcess] = {}
    for command in commands:
        if command in NOT_RUN:
            continue
        result = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True,
                                timeout=1200)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, f"{command}\n{result.stderr}"
        notices = [line for line in result.stderr.splitlines() if "Warning" in line]
        if command.startswith(".venv/bin/dagster asset materialize"):  # the README says Dagster prints this one
            assert all("SupersessionWarning" in line and "dg launch" in line for line in notices), notices
        else:
            assert not notices, f"{command}\n{result.stderr}"
        assert "temporary" not in result.stdout + result.stderr, f"{command} used a throwaway instance"
        outputs[command] = result
    dry_run = subprocess.run(["make", "-n", "dev"], cwd=clone, env=env, capture_output=True, text=True, timeout=60)
    assert ".venv/bin/dagster dev -w workspace.yaml" in dry_run.stdout, dry_run.stdout + dry_run.stderr

    demo = outputs["make demo"].stdout
    assert "Summary: 6 run(s)" in demo and "70 bars partition(s) recorded with 12,154 bars" in demo, demo
    assert "Checks: 3 of 4 passed." in demo and "price_anomalies (warning): price_jump=1" in demo, demo
    assert "AAPL" in demo.split("price_anomalies (warning)")[1], "the warning names the symbol"
    assert "DEBUG" not in demo and len(demo.splitlines()) <= 40, demo
    sync = next(out.stdout for command, out in outputs.items() if command.startswith(".venv/bin/jutsu sync"))
    assert "all 70 partitions are materialised and final; nothing to fetch." in sync
    query = next(out.stdout for command, out in outputs.items() if command.startswith(".venv/bin/jutsu sql"))
    assert query.splitlines()[0].split() == ["day", "close", "sma_20", "rsi_14"] and len(query.splitlines()) == 6

    # The dg/dagster runs are in the project's instance, where jutsu and the UI look.
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(clone / "data" / "dagster_home"))) as instance:
        runs = instance.get_runs()
    jobs = [run.job_name for run in runs]
    # The README's three bars materialisations (two one-partition runs, one range run); jutsu's downstream
    # runs are asset jobs too, but over symbols, not `<date>|<SYMBOL>` keys.
    readme_runs = [run for run in runs if run.job_name == "__ASSET_JOB" and (
        run.tags.get("dagster/partition") == "2012-01-01|FB"
        or run.tags.get("dagster/asset_partition_range_start") == "2010-01-01|AAPL")]
    assert len(readme_runs) == 3 and "sync_us_stocks_bars_1d" in jobs, [(r.job_name, r.tags) for r in runs]

    # Elsewhere, without DAGSTER_HOME or a .env, the definitions say the instance is a throwaway one.
    one_partition = next(c for c in commands if c.startswith(".venv/bin/dg launch") and "--partition " in c)
    elsewhere = subprocess.run(["bash", "-c", one_partition.replace(".venv/bin/", "../.venv/bin/")],
                               cwd=clone / "docs", env=env, capture_output=True, text=True, timeout=600)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "DAGSTER_HOME is not set" in elsewhere.stderr and "temporary instance" in elsewhere.stderr
