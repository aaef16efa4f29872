"""The only column names formatted into SQL (DDL and scoped reads) match IDENTIFIER (its own module: the
indicator registry checks its column names without importing DuckDB)."""

from __future__ import annotations

import re

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
