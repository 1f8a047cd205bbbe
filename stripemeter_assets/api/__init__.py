"""The HTTP API (`stripemeter serve`, DESIGN §7): a durable front door to the
landing area and a reader of the analyst snapshot. It never writes the
warehouse: ingested events become landing files, replays are Dagster runs."""

from stripemeter_assets.api.app import create_app

__all__ = ["create_app"]
