"""The project's SQL, shipped in the package as `stripemeter_assets.sql` and
loaded by `stripemeter_assets.warehouse.load_sql`."""
