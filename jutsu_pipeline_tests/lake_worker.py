"""A writer process for the DuckLake concurrency tests: materialise a symbol range of the bars asset.

Usage: python -m jutsu_pipeline_tests.lake_worker <jutsu.yaml> <first symbol> <last symbol> [<times>]
Prints `committed <n>` after each successful run (the parent kills it at a chosen moment).
"""

from __future__ import annotations

import sys

import dagster as dg

from jutsu_pipeline.config import load_config
from jutsu_pipeline_tests.helpers import partitioning, run_bars


def main(config_path: str, first: str, last: str, times: int = 1) -> int:
    config = load_config(config_path)
    dates = partitioning(config).date_keys()
    instance = dg.DagsterInstance.ephemeral()
    for n in range(1, times + 1):
        result = run_bars(config, instance, start=f"{dates[0]}|{first}", end=f"{dates[-1]}|{last}")
        if not result.success:
            return 1
        print(f"committed {n}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], *(int(a) for a in sys.argv[4:])))
