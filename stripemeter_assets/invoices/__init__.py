"""Invoice reconciliation (DESIGN §5): local counters priced on their Stripe prices against
the invoice preview, draft or finalized invoice; money at stake per row."""
