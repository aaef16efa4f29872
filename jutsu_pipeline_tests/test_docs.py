"""The SQL cookbook in docs/querying.md runs against a real synced DuckDB file."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from jutsu_pipeline_tests.helpers import run_bars, run_indicators

DOCS = Path(__file__).parents[1] / "docs"


def _statements(markdown: str) -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", markdown, flags=re.S)
    text = "\n".join(line for block in blocks for line in block.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def test_querying_cookbook_runs(sample_config, instance) -> None:
    assert run_bars(sample_config, instance, start="2004-06-01|AAPL", end="2006-01-01|MSFT").success
    assert run_indicators(sample_config, instance, ["AAPL", "FB", "GOOG", "IBM", "MSFT"]).success
    statements = _statements((DOCS / "querying.md").read_text()) + _statements((DOCS / "indicators.md").read_text())
    assert len(statements) >= 6
    with duckdb.connect(str(sample_config.database), read_only=True) as con:
        results = [con.execute(statement).fetchall() for statement in statements]
    assert all(results), "every cookbook query returns rows on the sample data"
    splits = results[5]
    assert [(row[0], str(row[1])) for row in splits] == [("AAPL", "2005-02-28")]


def test_docs_agree_with_the_code_on_which_checks_block() -> None:
    import jutsu_pipeline.quality.stored  # noqa: F401 - registers the built-in checks
    from jutsu_pipeline.config import Profile
    from jutsu_pipeline.quality import checks

    table = (DOCS / "data-quality.md").read_text().split("| check | rules | blocks: strict | standard | lenient |")[1]
    rows = [line.split("|")[1:-1] for line in table.split("\n\n")[0].strip().splitlines()[1:]]
    documented = {re.search(r"`(\w+)`", row[0])[1]: [cell.strip().split()[0] for cell in row[2:5]] for row in rows}
    assert set(documented) == {"ohlcv_schema", "no_duplicates", "calendar_complete", "price_anomalies", "fresh"}
    for check, cells in documented.items():
        expected = ["yes" if checks.get(check).is_blocking(profile) else "no"
                    for profile in (Profile.STRICT, Profile.STANDARD, Profile.LENIENT)]
        assert cells == expected, check
    operations = (DOCS / "operations.md").read_text()
    assert "`calendar_complete` and\n  `price_anomalies` only under `strict`" in operations
    assert "data-quality.md#asset-checks" in operations
