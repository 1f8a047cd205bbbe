"""The bundled defaults, shipped in the package as `stripemeter_assets.bundled`:
the sample config (`stripemeter.yaml`) and the local instance's `dagster.yaml`."""
