-- /metrics landing backlog: of the ready landing files ($paths, listed by the
-- API), those the snapshot's ledger has not seen. Probing with the few ready
-- paths, rather than reading every path ever seen, keeps a scrape's cost
-- with what is in the landing now.
SELECT count(*) FROM unnest($paths::VARCHAR[]) AS ready(path)
WHERE NOT EXISTS (SELECT 1 FROM landing_files l WHERE l.path = ready.path)
