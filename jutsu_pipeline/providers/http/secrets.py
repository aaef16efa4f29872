"""Secret values that never print, and redaction of known secrets from text and log records."""

from __future__ import annotations

import logging
import threading

_MASK = "***"


class Secret:
    """A credential: `str()`/`repr()` show `***`; `reveal()` returns the value for the wire only."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= 4:  # remembered, so `redact` and the log filter mask it wherever it appears
            with _lock:
                _known.add(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_lock = threading.Lock()
_known: set[str] = set()


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, _MASK)
    return text


def _redact_record(record: logging.LogRecord) -> bool:
    """A log filter masking registered secrets in the record (httpx logs full URLs, including query strings)."""
    message = record.getMessage()
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    return True


def install_log_redaction(*logger_names: str) -> None:
    """Attach the redacting filter to the named loggers (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if _redact_record not in logger.filters:
            logger.addFilter(_redact_record)
