"""The `sample` provider: real daily bars shipped inside the package (offline, no keys)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from jutsu_pipeline.providers.local_files import LocalFilesProvider
from jutsu_pipeline.timeframes import Timeframe

SAMPLE_DIR = Path(str(files("jutsu_pipeline") / "sample_data"))


class SampleProvider(LocalFilesProvider):
    """AAPL, FB, GOOG, IBM, MSFT daily bars 2000-03-01..2013-03-01 with adjusted closes."""

    name = "sample"
    actions_source = "sample"

    def __init__(self, path: Path = SAMPLE_DIR, timezone: str = "America/New_York") -> None:
        super().__init__(path, timezone, timeframes=frozenset({Timeframe.D1}))

