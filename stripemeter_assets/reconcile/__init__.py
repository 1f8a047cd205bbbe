"""Pre-invoice reconciliation (DESIGN §5): local counters against what
Stripe's meter event summaries hold, per (tenant, customer, metric, period).

    compare       statuses, drift and causes (pure)
    stripe_totals Stripe's totals over minute-aligned windows: paged, paced
    run           one reconciliation: load, fetch, compare, auto-correct, store
    report        CSV, HTML (table + inline SVG drift chart) and Markdown
"""
