"""The HTTP API (`stripemeter serve`, DESIGN §7): a durable front door to the
landing area and a reader of the analyst snapshot. It never writes the
warehouse: ingested events become landing files, replays are Dagster runs.
The app is in `api.app`; this package imports nothing, so that every other
`stripemeter` command starts without FastAPI."""
