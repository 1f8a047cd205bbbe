-- Marks the pending late events with ts in [$start, $end) applied (of one
-- tenant, or all when $tenant is NULL), so the next recomputation counts
-- them. Used by replays and by UI backfills of daily_usage.
UPDATE late_events SET status = 'applied', applied_at = $now
WHERE status = 'pending' AND ts >= $start AND ts < $end
  AND ($tenant::VARCHAR IS NULL OR tenant_id = $tenant)
