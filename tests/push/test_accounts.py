"""Connect accounts and Stripe's rate limits (DESIGN §4): pacing per mode and
per account at Stripe's documented limits, and one unreachable account never
stops the others."""

from stripemeter_assets.push.pacing import Pacer


def test_an_account_stripe_refuses_with_403_does_not_stop_another_accounts_pushes(push):
    push.configure(accounts={"aaa": "acct_GONE", "acme": "acct_OK"})
    push.stripe_scope(account="acct_OK")              # the key is connected to acct_OK only
    push.usage(5, tenant="aaa")                       # planned first
    push.usage(7, tenant="acme")

    meta = push.metadata(push.run(max_workers=1, expect_success=False))

    by_tenant = {r["tenant_id"]: r for r in push.pushes()}
    assert by_tenant["acme"]["status"] == "acknowledged"
    assert push.stripe_total(account="acct_OK") == 7
    assert by_tenant["aaa"]["status"] == "pending"    # kept for the next run, not lost
    assert "does not have access" in by_tenant["aaa"]["last_error"]
    assert "acct_GONE" in meta["accounts_skipped"] and "acct_OK" not in meta["accounts_skipped"]


def _calls_in_one_second(pacer: Pacer, mode: str, kind: str, account: str | None, clock: list[float]) -> int:
    n = 0
    start = clock[0]
    while True:
        pacer.acquire(mode, kind, account)
        if clock[0] - start >= 1.0:
            return n
        n += 1


def test_pacing_follows_stripes_limits_per_mode_and_account():
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    pacer = Pacer(True, 0.8, clock=lambda: clock[0], sleep=sleep)
    # Live meter events on the platform: their own 1000/s limit (80 % of it).
    assert 790 <= _calls_in_one_second(pacer, "live", "meter_events", None, clock) <= 800
    # On a connected account they count toward its basic 100/s, shared with its other calls.
    assert 78 <= _calls_in_one_second(pacer, "live", "meter_events", "acct_1", clock) <= 80
    assert pacer.bucket("live", "meter_events", "acct_1") is pacer.bucket("live", "general", "acct_1")
    # Every account has its own limits; test mode allows 25/s for everything.
    assert pacer.bucket("live", "general", "acct_2") is not pacer.bucket("live", "general", "acct_1")
    assert 18 <= _calls_in_one_second(pacer, "test", "meter_events", None, clock) <= 20
    assert pacer.bucket("test", "meter_events", None) is pacer.bucket("test", "general", None)
