"""Microseconds per priced line for the pricing library's models (target: at most 50 µs).

Run: python bench/pricing.py [LINES]   (default 100,000 lines per model)
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal

from stripemeter_assets.pricing import parse_price_config, price_line

CONFIGS = {
    "graduated (4 tiers)": {
        "model": "graduated",
        "currency": "USD",
        "tiers": [
            {"upTo": 1000, "unitPrice": "0.01", "flatPrice": "5"},
            {"upTo": 10000, "unitPrice": "0.008", "flatPrice": "10"},
            {"upTo": 100000, "unitPrice": "0.005", "flatPrice": "20"},
            {"upTo": None, "unitPrice": "0.001", "flatPrice": "50"},
        ],
    },
    "volume (4 tiers)": {
        "model": "volume",
        "currency": "USD",
        "tiers": [
            {"upTo": 1000, "unitPrice": "0.01"},
            {"upTo": 10000, "unitPrice": "0.008", "flatPrice": "10"},
            {"upTo": 100000, "unitPrice": "0.005", "flatPrice": "20"},
            {"upTo": None, "unitPrice": "0.001", "flatPrice": "50"},
        ],
    },
    "package": {"model": "package", "currency": "USD", "unitPrice": "2.50", "packageSize": 1000},
}


def main(lines: int) -> None:
    rng = random.Random(42)
    # Quantities spread over every tier, some fractional, as counters produce them.
    quantities = [Decimal(rng.randrange(0, 500_000_000)).scaleb(-3) for _ in range(lines)]
    for name, raw in CONFIGS.items():
        config = parse_price_config(raw)
        start = time.perf_counter()
        for quantity in quantities:
            price_line(config, quantity)
        elapsed = time.perf_counter() - start
        print(f"{name:<22} {elapsed / lines * 1e6:6.2f} µs/line  ({lines:,} lines)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
