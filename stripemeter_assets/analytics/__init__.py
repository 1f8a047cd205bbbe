"""The analyst snapshot (DESIGN §8): a consistent read-only copy of the
warehouse that notebooks read without ever blocking billing.

    snapshot   publishing by atomic file swap
    publish    the op of `snapshot_job`
"""
