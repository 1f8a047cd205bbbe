"""Opening the warehouse with newer code: the schema files run again when the
code's schema differs from the one the warehouse last had."""

from stripemeter_assets.warehouse import connect


def test_new_code_on_an_existing_warehouse_creates_what_it_lacks(env):
    env.sql("SELECT 1")
    # The warehouse as older code left it: a table it did not have, and that code's fingerprint.
    env.sql("DROP TABLE stripe_meter_errors; UPDATE schema_fingerprint SET fingerprint = 'older code'")
    with connect(str(env.warehouse)) as conn:
        assert conn.execute("SELECT count(*) FROM stripe_meter_errors").fetchall() == [(0,)]
        [(fingerprint,)] = conn.execute("SELECT fingerprint FROM schema_fingerprint").fetchall()
    assert fingerprint != "older code"



def test_the_ingest_macros_live_in_the_warehouse(env):
    """A batch no longer creates them on each connection (7 ms of a one-event
    batch): any connection to the warehouse finds them."""
    env.sql("SELECT 1")
    with connect(str(env.warehouse), read_only=True) as conn:
        [(key,)] = conn.execute("SELECT sm_derived_key('t', 'api_calls', 'cus_1', NULL, "
                                "TIMESTAMP '2025-01-01 00:00:00', 1.50)").fetchall()
    assert len(key) == 32
