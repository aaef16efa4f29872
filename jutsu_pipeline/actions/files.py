"""`<SYMBOL>.actions.csv` next to a symbol's bars file: a user's own splits and dividends."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from jutsu_pipeline.actions.model import DIVIDEND, KINDS, SPLIT, actions_frame, empty_actions

COLUMNS = ("ex_date", "kind", "ratio", "cash_amount", "currency")


class ActionsFileError(ValueError):
    """An actions file breaks a rule; the message names the file, the row and what to do."""


def read_actions_file(path: Path, symbol: str) -> pl.DataFrame:
    """Actions of `symbol` from `path` (columns ex_date, kind, ratio, cash_amount[, currency]); empty if absent."""
    if not path.is_file():
        return empty_actions()
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except Exception as error:  # noqa: BLE001 - re-raised naming the file
        raise ActionsFileError(f"{path}: cannot read as CSV ({error}); expected columns {', '.join(COLUMNS)}") from None
    missing = [c for c in ("ex_date", "kind") if c not in raw.columns]
    if missing:
        raise ActionsFileError(f"{path}: missing column(s) {missing}; expected {', '.join(COLUMNS)}")
    # Line 1 is the header.
    return actions_frame([_parse_row(path, symbol, line, row) for line, row in enumerate(raw.iter_rows(named=True), 2)])


def _number(path: Path, line: int, row: dict, name: str) -> float | None:
    value = (row.get(name) or "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ActionsFileError(f"{path} line {line}: {name} {value!r} is not a number") from None


def _parse_row(path: Path, symbol: str, line: int, row: dict) -> dict:
    import datetime as dt

    kind = (row.get("kind") or "").strip().lower()
    if kind not in KINDS:
        raise ActionsFileError(f"{path} line {line}: kind {row.get('kind')!r} is not one of {list(KINDS)}")
    try:
        ex_date = dt.date.fromisoformat((row.get("ex_date") or "").strip())
    except ValueError:
        raise ActionsFileError(f"{path} line {line}: ex_date {row.get('ex_date')!r} is not a YYYY-MM-DD date") from None
    ratio, cash = _number(path, line, row, "ratio"), _number(path, line, row, "cash_amount")
    if kind == SPLIT and (ratio is None or ratio <= 0):
        raise ActionsFileError(f"{path} line {line}: a split needs ratio > 0 (new shares per old share, "
                               "2:1 -> 2, 1:10 reverse -> 0.1)")
    if kind == DIVIDEND and (cash is None or cash <= 0):
        raise ActionsFileError(f"{path} line {line}: a dividend needs cash_amount > 0 (per share)")
    return {"symbol": symbol, "ex_date": ex_date, "kind": kind, "ratio": ratio if kind == SPLIT else None,
            "cash_amount": cash if kind == DIVIDEND else None, "currency": (row.get("currency") or "").strip() or None}
