-- The analyst snapshot's as-of time ("now" of its views) and when it was published.
SELECT as_of, published_at FROM snapshot_info
