"""OAuth2 tokens kept in a JSON file with 0600 permissions (written atomically, never logged)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jutsu_pipeline.providers.http.secrets import Secret
from jutsu_pipeline.storage.atomic import write_atomically


@dataclass(frozen=True)
class Tokens:
    """Access and refresh token with their expiry times (epoch seconds)."""

    access_token: Secret
    refresh_token: Secret
    access_expires_at: float
    refresh_expires_at: float

    @classmethod
    def from_response(cls, payload: dict[str, Any], refresh_ttl: float, previous: Tokens | None = None) -> Tokens:
        """Tokens from a token-endpoint response; a refresh that returns the same refresh token keeps its expiry."""
        now = time.time()
        refresh = str(payload.get("refresh_token") or (previous.refresh_token.reveal() if previous else ""))
        same_refresh = previous is not None and previous.refresh_token.reveal() == refresh
        return cls(
            access_token=Secret(str(payload["access_token"])),
            refresh_token=Secret(refresh),
            access_expires_at=now + float(payload.get("expires_in", 1800)),
            refresh_expires_at=previous.refresh_expires_at if same_refresh and previous else now + refresh_ttl,
        )

    def to_json(self) -> dict[str, Any]:
        return {"access_token": self.access_token.reveal(), "refresh_token": self.refresh_token.reveal(),
                "access_expires_at": self.access_expires_at, "refresh_expires_at": self.refresh_expires_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tokens:
        return cls(Secret(str(data["access_token"])), Secret(str(data["refresh_token"])),
                   float(data["access_expires_at"]), float(data["refresh_expires_at"]))


class TokenFile:
    """Reads and writes `Tokens` at `path`; the file is created with mode 0600 and replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> Tokens:
        return Tokens.from_json(json.loads(self.path.read_text()))

    def save(self, tokens: Tokens) -> None:
        write_atomically(self.path, json.dumps(tokens.to_json()), private=True)
