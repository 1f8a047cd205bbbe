"""Python SDK: track usage events into the landing area or through the HTTP
API (`stripemeter serve`), read usage back from the analyst snapshot.

    from stripemeter_assets.sdk import StripeMeterClient

    with StripeMeterClient(tenant_id="acme", customer_id="cus_ABC123") as client:
        client.track("api_calls", quantity=100)

    client = StripeMeterClient(api_url="http://localhost:8787", api_key=key,
                               tenant_id="acme", customer_id="cus_ABC123")
"""

from stripemeter_assets.sdk.client import StripeMeterClient
from stripemeter_assets.sdk.events import InvalidEvent
from stripemeter_assets.sdk.http import ApiError

__all__ = ["ApiError", "InvalidEvent", "StripeMeterClient"]
