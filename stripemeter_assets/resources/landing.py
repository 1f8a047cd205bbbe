"""The landing area as a Dagster resource."""

from __future__ import annotations

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.ingest.landing import LandingFile, list_ready_files


class LandingResource(dg.ConfigurableResource):
    """Where producers drop files: a folder or an fsspec URL (`STRIPEMETER_LANDING`)."""

    url: str = ""
    settle_seconds: float | None = None

    def resolved_url(self) -> str:
        return self.url or settings.landing_url()

    def ready_files(self) -> list[LandingFile]:
        return list_ready_files(self.resolved_url(), settle=self.settle_seconds)
