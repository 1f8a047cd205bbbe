"""Python SDK: track usage events into the landing area, read usage back
from the analyst snapshot.

    from stripemeter_assets.sdk import StripeMeterClient

    with StripeMeterClient(tenant_id="acme", customer_id="cus_ABC123") as client:
        client.track("api_calls", quantity=100)
"""

from stripemeter_assets.sdk.client import StripeMeterClient
from stripemeter_assets.sdk.events import InvalidEvent

__all__ = ["InvalidEvent", "StripeMeterClient"]
