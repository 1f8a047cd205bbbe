"""The period-close rule and its configuration."""

from datetime import datetime, timedelta

import pytest

from stripemeter_assets.periods.close import Grace
from stripemeter_assets.settings import ConfigError, parse_config


def test_a_period_closes_at_its_end_plus_the_accounts_grace_not_the_lateness_window():
    config = parse_config({"lateness_hours": 48, "stripe": {
        "meters": [{"tenant": "*", "metric": "api_calls", "event_name": "api_calls"}],
        "accounts": {"slow": "acct_slow"}, "invoice_grace_hours": {"default": 1, "acct_slow": 48}}})
    grace = Grace(config)
    end = datetime(2025, 2, 15, 13, 42, 11)
    assert not grace.is_closed("acme", "api_calls", end, end + timedelta(minutes=59))
    assert grace.is_closed("acme", "api_calls", end, end + timedelta(hours=1))
    assert grace.closes_at("slow", "api_calls", end) == end + timedelta(hours=48)
    assert config.lateness_beyond_grace() == ["(default): L 48 h > G 1 h"]


@pytest.mark.parametrize("hours", [0, 73, "soon"])
def test_grace_outside_stripes_range_is_refused(hours):
    with pytest.raises(ConfigError, match="invoice_grace_hours"):
        parse_config({"stripe": {"invoice_grace_hours": hours}})
