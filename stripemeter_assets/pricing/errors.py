"""The one error type the pricing library raises for bad input."""

from __future__ import annotations


class ScenarioError(ValueError):
    """A scenario, price config or usage row is invalid.

    `path` names the offending field the way a user would find it in their JSON
    (`usageItems[1].priceConfig.tiers[2].upTo`); `reason` says what is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path or "scenario"
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
