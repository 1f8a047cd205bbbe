-- /metrics landing backlog: the landing files the snapshot's ledger has seen.
SELECT DISTINCT path FROM landing_files
