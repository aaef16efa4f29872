"""The `sample` provider: real daily bars bundled in data/sample (offline, no keys)."""

from __future__ import annotations

from pathlib import Path

from jutsu_pipeline.config import REPO_ROOT
from jutsu_pipeline.providers.local_files import LocalFilesProvider
from jutsu_pipeline.timeframes import Timeframe

SAMPLE_DIR = REPO_ROOT / "data" / "sample"


class SampleProvider(LocalFilesProvider):
    """AAPL, FB, GOOG, IBM, MSFT daily bars 2000-03-01..2013-03-01 with adjusted closes."""

    name = "sample"

    def __init__(self, path: Path = SAMPLE_DIR, timezone: str = "America/New_York") -> None:
        super().__init__(path, timezone, timeframes=frozenset({Timeframe.D1}))


def build(options: dict, timezone: str, resolve, secrets=None) -> SampleProvider:  # noqa: ANN001
    path = Path(resolve(options["path"])) if "path" in options else SAMPLE_DIR
    return SampleProvider(path, timezone)
