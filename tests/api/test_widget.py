"""The customer widget rendered by headless Chromium from the real server."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from stripemeter_assets import settings
from stripemeter_assets.cli import commands as cli
from stripemeter_assets.api.token import make_token
from stripemeter_assets.definitions import defs
from stripemeter_assets.cli.runner import catch_up
from tests.api.conftest import WIDGET_SECRET
from tests.browser import CHROMIUM, dump_dom as render
from tests.conftest import event

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (make browser)")
PRICES = {"api_calls": {"model": "flat", "currency": "USD", "unitPrice": "0.01"}}


@pytest.fixture
def priced(env, keys):
    config = __import__("yaml").safe_load(env.config_path.read_text())
    env.write_config({**config, "prices": PRICES})




def token_from_cli(monkeypatch, capsys, customer: str) -> str:
    monkeypatch.setenv("STRIPEMETER_WIDGET_SECRET", WIDGET_SECRET)
    assert cli.main(["widget-token", "--tenant", "acme", "--customer", customer, "--ttl", "1h"]) == 0
    return capsys.readouterr().out.strip()


def test_widget_shows_one_customers_usage_projection_and_as_of(env, keys, priced, server, instance,
                                                               monkeypatch, capsys):
    env.drop_jsonl("a.jsonl", [event(customer="cus_A", quantity="1200", ts="2025-03-02T10:00:00Z"),
                               event(customer="cus_A", quantity="800", ts="2025-03-05T10:00:00Z"),
                               event(customer="cus_B", quantity="999999", ts="2025-03-05T10:00:00Z")])
    assert not catch_up(defs, instance).failed
    [(projected,)] = env.sql("SELECT projected_cost FROM cost_projection WHERE customer_ref = 'cus_A'")

    token = token_from_cli(monkeypatch, capsys, "cus_A")
    dom = render(f"{server.url}/widget/cus_A?token={token}")
    assert re.search(r'class="num usage">2000</span>', dom), dom[:2000]
    assert 'class="num cost-to-date">20</span>' in dom  # 2000 x 0.01 USD
    assert f'class="num projected-cost">{projected.normalize():f}</span>' in dom
    assert dom.count('class="day"') == 2  # two days with usage in the chart
    assert 'datetime="2025-03-20T12:00:00Z"' in dom
    assert "999999" not in dom and "cus_B" not in dom

    # cus_A's token does not open cus_B's widget.
    other = render(f"{server.url}/widget/cus_B?token={token}")
    assert "another customer" in other and "999999" not in other
    # An expired token, or a tampered one, is refused.
    expired = make_token(WIDGET_SECRET.encode(), "acme", "cus_A", timedelta(hours=1),
                         settings.now() - timedelta(hours=2))
    assert "token expired" in render(f"{server.url}/widget/cus_A?token={expired}")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert "bad signature" in render(f"{server.url}/widget/cus_A?token={forged}")
