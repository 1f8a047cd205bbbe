"""Cost projection (DESIGN §6): usage to date, projected usage and their cost
per billing period, and pricing backtests.

    costs        price book, a counter's exact projection, backtest logic (pure)
    project      the projection of billing periods, set-based (SQL in sql/projection/)
    price_terms  prices as the integer terms SQL prices lines with
    assets       `cost_projection`
"""
