"""Provider credentials as a Dagster resource: one optional field per credential the registered providers
declare, read from its environment variable (dg.EnvVar, masked in repr and the UI), handed to providers
through `build_provider(..., secrets=creds.secrets())`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from jutsu_pipeline.providers import registry
from jutsu_pipeline.providers.http.secrets import Secret


def _declared() -> dict[str, registry.Credential]:
    return {c.field: c for spec in registry.specs() for c in spec.credentials}


class _CredentialsBase(dg.ConfigurableResource):
    """Secrets of the HTTP providers. Every field is optional: a provider that needs a missing one falls
    back to its environment variable and, failing that, raises an error naming the variable."""

    @classmethod
    def from_env(cls) -> ProviderCredentials:
        """Each field bound to its dg.EnvVar when that variable is set (so Dagster never shows the value)."""
        return cls(**{c.field: dg.EnvVar(c.env_var) for c in _declared().values()
                      if c.field in cls.model_fields and os.environ.get(c.env_var)})

    def secrets(self) -> dict[str, Secret | str]:
        """The mapping `build_provider(..., secrets=...)` expects (only the fields that are set)."""
        declared = _declared()
        return {name: Secret(value) if declared[name].secret else value
                for name in type(self).model_fields if (value := getattr(self, name)) and name in declared}


# The fields come from the provider registry, so a new provider's credentials need no edit here. Type checkers
# cannot see fields made at runtime: to them the class is its base (its fields are read through `secrets()`).
if TYPE_CHECKING:
    ProviderCredentials = _CredentialsBase
else:
    ProviderCredentials = type("ProviderCredentials", (_CredentialsBase,), {
        "__module__": __name__,
        "__doc__": _CredentialsBase.__doc__,
        "__annotations__": {c.field: str | None for c in _declared().values()},
        **{c.field: Field(default=None, repr=not c.secret, description=c.description) for c in _declared().values()},
    })
