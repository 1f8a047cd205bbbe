"""Cost projection (DESIGN §6): usage to date, projected usage and their cost
per billing period, and pricing backtests.

    costs    price book, projection and backtest logic (pure)
    assets   `cost_projection`
"""
