"""Providers by name. A provider declares its options model, its credentials, whether it reads local
files, and a factory; `register` is the one line that makes it usable from jutsu.yaml."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:  # the protocol's module imports polars; the registry only names it
    from jutsu_pipeline.providers.base import BarsProvider


class ProviderOptions(BaseModel):
    """Base of every provider's `options:` model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=ProviderOptions)


@dataclass(frozen=True)
class Credential:
    """A secret a provider reads: the `ProviderCredentials` resource field and its environment variable."""

    field: str
    env_var: str
    description: str
    secret: bool = True  # False for e.g. a file path: shown in the UI, never wrapped in Secret
    env_option: str | None = None  # the provider option that renames the variable (e.g. `key_id_env`)

    def variable(self, options: ProviderOptions) -> str:
        return getattr(options, self.env_option or "", None) or self.env_var  # unset options: the defaults


class MissingCredentials(ValueError):
    """A market's provider needs credentials its environment does not hold."""

    def __init__(self, market: str, provider: str, missing: list[tuple[Credential, str]]) -> None:
        names = " and ".join(f"{variable} ({c.description})" for c, variable in missing)
        files = " and ".join(f"{variable}_FILE" for c, variable in missing if c.secret)
        one = len(missing) == 1
        super().__init__(
            f"market {market} (provider {provider}) needs {names}, which {'is' if one else 'are'} not set. Export "
            f"{'it' if one else 'them'} where jutsu and Dagster run"
            + (f" (or set {files} to a file holding {'it' if one else 'each'})" if files else "")
            + f" and sync again; how to get {'it' if one else 'them'}: docs/providers.md#{provider}.")


def missing_credentials(market: str, provider: str, options: ProviderOptions,
                        secrets: Mapping[str, Any] | None = None) -> None:
    """Raise MissingCredentials naming every credential of `provider` that is neither in `secrets` nor in
    the environment (its variable, or for a secret `<VAR>_FILE`)."""
    missing = [(c, c.variable(options)) for c in spec(provider).credentials
               if not (secrets or {}).get(c.field) and not os.environ.get(c.variable(options))
               and not (c.secret and os.environ.get(f"{c.variable(options)}_FILE"))]
    if missing:
        raise MissingCredentials(market, provider, missing)


@dataclass(frozen=True)
class BuildContext:
    """What a factory gets besides its options: the market's timezone, config-path resolution, secrets."""

    timezone: str
    resolve: Callable[[str | Path], Path]
    secrets: Mapping[str, Any]


@dataclass(frozen=True)
class ProviderSpec(Generic[OptionsT]):
    """Everything the pipeline knows about a provider."""

    name: str
    options: type[OptionsT]
    factory: Callable[[OptionsT, BuildContext], BarsProvider]
    local: bool = False  # reads local files: no network, no rate limit, runs in the DuckDB writer pool
    credentials: tuple[Credential, ...] = ()
    description: str = ""


_REGISTRY: dict[str, ProviderSpec[Any]] = {}


def register(spec: ProviderSpec[OptionsT]) -> ProviderSpec[OptionsT]:
    """Make `spec` available under `spec.name` (re-registering a name replaces it)."""
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def names() -> list[str]:
    return sorted(_REGISTRY)


def spec(name: str) -> ProviderSpec[Any]:
    """The registered provider `name`; ValueError listing the known ones otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown provider {name!r}: choose one of {names()}")
    return _REGISTRY[name]


def specs() -> list[ProviderSpec[Any]]:
    return [_REGISTRY[name] for name in names()]


def parse_options(name: str, raw: Mapping[str, Any] | ProviderOptions | None) -> ProviderOptions:
    """`raw` validated with provider `name`'s options model; ValueError naming every bad key."""
    model = spec(name).options
    if isinstance(raw, model):
        return raw
    if isinstance(raw, ProviderOptions):
        raw = raw.model_dump(exclude_unset=True)
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as error:
        known = ", ".join(model.model_fields) or "none"
        problems = "; ".join(_describe(item, model) for item in error.errors())
        raise ValueError(f"{problems} (options of provider {name}: {known})") from None


def _describe(item: Any, model: type[ProviderOptions]) -> str:
    key = ".".join(str(part) for part in item["loc"]) or "options"
    if item["type"] == "extra_forbidden":
        close = get_close_matches(key, list(model.model_fields), n=1)
        return f"unknown option {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    return f"option {key!r}: {item['msg'].removeprefix('Value error, ')}"


def build_provider(name: str, options: Mapping[str, Any] | ProviderOptions | None, timezone: str,
                   resolve: Callable[[str | Path], Path] = Path, *,
                   secrets: Mapping[str, Any] | None = None) -> BarsProvider:
    """Instantiate provider `name` with validated `options`; `resolve` makes config paths absolute; `secrets`
    (the ProviderCredentials resource's) override credentials read from environment variables."""
    provider = spec(name)
    return provider.factory(parse_options(name, options), BuildContext(timezone, resolve, dict(secrets or {})))


def is_local(name: str) -> bool:
    """Whether a provider reads local files (no network, no rate limit)."""
    return spec(name).local
