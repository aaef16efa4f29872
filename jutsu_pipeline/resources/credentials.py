"""Provider credentials as a Dagster resource: values come from environment variables (dg.EnvVar), are
masked in repr and the UI, and reach providers through `build_provider(..., secrets=creds.secrets())`."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from jutsu_pipeline.providers.http.secrets import Secret

# resource field -> the environment variable it is read from by default
ENV_VARS: dict[str, str] = {
    "alpaca_key_id": "APCA_API_KEY_ID",
    "alpaca_secret_key": "APCA_API_SECRET_KEY",
    "schwab_client_id": "SCHWAB_CLIENT_ID",
    "schwab_client_secret": "SCHWAB_CLIENT_SECRET",
    "schwab_token_file": "SCHWAB_TOKEN_FILE",
}


class ProviderCredentials(dg.ConfigurableResource):
    """Secrets of the HTTP providers. Every field is optional: a provider that needs a missing one falls
    back to its environment variable and, failing that, raises an error naming the variable."""

    alpaca_key_id: str | None = Field(default=None, repr=False, description="Alpaca API key id")
    alpaca_secret_key: str | None = Field(default=None, repr=False, description="Alpaca API secret key")
    schwab_client_id: str | None = Field(default=None, repr=False, description="Schwab app key")
    schwab_client_secret: str | None = Field(default=None, repr=False, description="Schwab app secret")
    schwab_token_file: str | None = Field(default=None, description="path of the Schwab OAuth token JSON file")

    @classmethod
    def from_env(cls) -> ProviderCredentials:
        """Each field bound to its dg.EnvVar when that variable is set (so Dagster never shows the value)."""
        return cls(**{field: dg.EnvVar(name) for field, name in ENV_VARS.items() if os.environ.get(name)})

    def secrets(self) -> dict[str, Secret | str]:
        """The mapping `build_provider(..., secrets=...)` expects (only the fields that are set)."""
        out: dict[str, Secret | str] = {}
        for field in ENV_VARS:
            value = getattr(self, field)
            if value:
                out[field] = value if field == "schwab_token_file" else Secret(value)
        return out
