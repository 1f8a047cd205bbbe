from stripemeter_assets.resources.landing import LandingResource
from stripemeter_assets.resources.stripe import StripeResource
from stripemeter_assets.resources.warehouse import WarehouseResource

__all__ = ["LandingResource", "StripeResource", "WarehouseResource"]
