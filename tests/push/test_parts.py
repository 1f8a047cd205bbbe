"""The push's parts on their own: mapping validation, key scrubbing, error
classes, pacing, backoff and the old intents' settlement."""

import random
from datetime import datetime

import pytest
import stripe

from stripemeter_assets.push.client import PushCallError, classify, scrub
from stripemeter_assets.push.mapping import StripeMapping
from stripemeter_assets.push.outbox import Intent
from stripemeter_assets.push.pacing import RetryPolicy, TokenBucket
from stripemeter_assets.push.run import _delivered_subset
from stripemeter_assets.settings import ConfigError

MARCH = datetime(2025, 3, 1)


@pytest.mark.parametrize("stripe_config, where", [
    ({"meters": [{"tenant": "*", "metric": "x"}]}, "event_name"),
    ({"accounts": {"acme": "123"}}, "stripe.accounts.acme"),
    ({"customers": {"ext": "nope"}}, "stripe.customers.ext"),
])
def test_mapping_rejects_bad_config_naming_the_key(stripe_config, where):
    with pytest.raises(ConfigError, match=where):
        StripeMapping.from_config(stripe_config)


def test_scrub_removes_key_shapes_and_the_configured_keys(monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "oddly-shaped-secret-1234")
    text = "a sk_live_abc123 b rk_test_XYZ c 'pk_live_q' d oddly-shaped-secret-1234 e whsec_zz"
    assert scrub(text) == "a [redacted] b [redacted] c '[redacted]' d [redacted] e [redacted]"


def test_stripe_errors_are_sorted_and_scrubbed():
    def err(cls, status, message, code=None):
        if cls is stripe.InvalidRequestError:
            return cls(message, None, http_status=status, code=code)
        return cls(message, http_status=status, code=code)

    assert classify(err(stripe.RateLimitError, 429, "slow down")).kind == "retryable"
    assert classify(err(stripe.APIError, 500, "oops")).kind == "retryable"
    assert classify(err(stripe.APIConnectionError, None, "reset")).kind == "retryable"
    assert classify(err(stripe.AuthenticationError, 401, "Invalid API Key provided: sk_live_secret1")).kind == "abort"
    refused = classify(err(stripe.InvalidRequestError, 400, "No such customer: 'cus_X' (key sk_live_secret1)"))
    assert isinstance(refused, PushCallError) and refused.kind == "fatal"
    assert "sk_live_secret1" not in str(refused) and "No such customer" in str(refused)
    duplicate = classify(err(stripe.InvalidRequestError, 400, "An event already exists with identifier smp_1.",
                             "resource_already_exists"))
    assert not isinstance(duplicate, PushCallError)


def test_token_bucket_allows_at_most_80_percent_of_the_limit_in_any_second():
    clock = [0.0]
    bucket = TokenBucket.for_limit(25, 0.8, clock=lambda: clock[0],
                                   sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    times = []
    for _ in range(200):
        bucket.acquire()
        times.append(clock[0])
    worst = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert worst <= 20


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    policy = RetryPolicy(max_attempts=8, base_seconds=1.0, max_seconds=8.0)
    rng = random.Random(7)
    delays = [policy.delay(n, rng) for n in range(1, 7)]
    for n, d in enumerate(delays, start=1):
        cap = min(8.0, 2 ** (n - 1))
        assert cap / 2 <= d <= cap
    assert len({round(d, 6) for d in delays}) == len(delays)


def _intent(identifier, value):
    return Intent(identifier=identifier, account="platform", mode="test", shadow=False, tenant_id="acme",
                  customer_ref="cus_A", stripe_customer="cus_A", metric="api_calls", event_name="api_calls",
                  meter_id=None, meter_formula="sum", unit_scale=1, period_start=MARCH,
                  period_end=datetime(2025, 4, 1), revision=1, kind="delta", origin_period=None, value=value,
                  target_total=value, event_ts=0, status="pending")


def test_old_intents_count_as_delivered_only_when_stripes_settled_total_says_so():
    # The window has no younger pending intent (those are sent and settled first).
    old_5, old_3 = _intent("o5", 5), _intent("o3", 3)
    assert _delivered_subset([old_5, old_3], 0) == set()             # nothing arrived: re-send all
    assert _delivered_subset([old_5, old_3], 8) == {"o5", "o3"}      # both arrived
    assert _delivered_subset([old_5, old_3], 5) == {"o5"}            # o5 arrived: o3 is re-sent
    assert _delivered_subset([old_5, old_3], 2) is None              # no combination explains Stripe's total
    # 4 of two 4s: either one counts as delivered, the other is re-sent: Stripe ends exact.
    assert len(_delivered_subset([_intent("a", 4), _intent("b", 4)], 4)) == 1