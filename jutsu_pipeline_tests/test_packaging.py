"""The demo works from an installed wheel, not only from a checkout: build the wheel, install it into a
fresh venv (dependencies borrowed from this venv's site-packages, so nothing is downloaded), sync the
bundled sample there, and start the fake exchange standalone."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import pytest
import yaml

ROOT = Path(__file__).parents[1]

# Builds a wheel and a fresh venv (end-to-end, ~15 s): `make test-slow` and .ci/run. One build at a time.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its python."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(folder / "dist"), str(ROOT)], check=True, cwd=folder)
    (wheel,) = (folder / "dist").glob("jutsu_pipeline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "jutsu_pipeline/sample_data/AAPL.parquet" in names and "jutsu_fake_exchange/__main__.py" in names
    assert {f"jutsu_pipeline/report/static/{name}" for name in ("report.js", "report.css",
            "lightweight-charts.standalone.production.js")} <= set(names)  # the HTML report's page assets
    assert not any(name.startswith("jutsu_pipeline_tests/") for name in names)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    # This venv's dependencies, appended after the fresh site-packages; its editable install of the
    # checkout is not activated (.pth files of an added directory are not executed).
    (purelib / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True)
    return python


def test_sample_sync_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([installed, "-c", "import jutsu_pipeline, jutsu_fake_exchange as f; "
                            "print(jutsu_pipeline.__file__); print(f.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert all(str(installed.parents[1]) in path for path in where), where  # not the checkout
    config = tmp_path / "jutsu.yaml"
    config.write_text(yaml.safe_dump({"duckdb_path": "bars.duckdb", "markets": {"us_stocks": {
        "provider": "sample", "calendar": "XNYS", "timeframes": ["1d"], "start": "2012-01-01",
        "end": "2012-04-01", "symbols": ["AAPL", "IBM"]}}}))
    env = {**os.environ, "JUTSU_CONFIG": str(config), "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    done = subprocess.run([installed.parent / "jutsu", "sync"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    with duckdb.connect(str(tmp_path / "bars.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT symbol, count(*) FROM bars GROUP BY symbol ORDER BY symbol").fetchall()
    assert rows == [("AAPL", 62), ("IBM", 62)]  # XNYS sessions of 2012-01..03


def test_fake_exchange_starts_standalone_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    process = subprocess.Popen([installed, "-m", "jutsu_fake_exchange", "--port", "0"], stdout=subprocess.PIPE,
                               text=True, cwd=tmp_path)
    try:
        first = process.stdout.readline() if process.stdout else ""
        assert first.startswith("fake exchange listening on http://127.0.0.1:"), first
    finally:
        process.terminate()
        process.wait(timeout=30)
