"""The market-data resource: builds the provider a market's config names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from jutsu_pipeline.config import JutsuConfig
from jutsu_pipeline.providers import build_provider
from jutsu_pipeline.providers.registry import MissingCredentials, missing_credentials
from jutsu_pipeline.resources.credentials import ProviderCredentials

if TYPE_CHECKING:  # the protocol's module imports polars: the provider's own module loads it when built
    from jutsu_pipeline.providers.base import BarsProvider


class MarketDataResource(dg.ConfigurableResource):
    """Providers for the configured markets; the HTTP providers' secrets come from `credentials`."""

    credentials: ProviderCredentials = Field(default_factory=ProviderCredentials)

    def provider_for(self, config: JutsuConfig, market: str, timezone: str) -> BarsProvider:
        settings = config.markets[market]
        try:
            missing_credentials(market, settings.provider, settings.options, self.credentials.secrets())
        except MissingCredentials as error:  # the whole story: no traceback in the CLI or the UI
            raise dg.Failure(description=str(error)) from None
        return build_provider(settings.provider, settings.options, timezone, config.resolve,
                              secrets=self.credentials.secrets())
