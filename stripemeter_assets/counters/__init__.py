"""Counters (DESIGN §3): daily and period counters as pure functions of the
ledger, recomputed per partition, and the replay that applies late events.

    recompute   the SQL-backed recomputation and the replay's diff
    replay      the op of `replay_job`
    assets      `daily_usage`, `period_usage`
"""
