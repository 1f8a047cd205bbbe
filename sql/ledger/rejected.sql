-- A file that could not be parsed at all is also a quarantine entry, so the
-- quarantine table alone lists everything not loaded. Params: $batch_id, $now.
INSERT INTO quarantine
SELECT path, NULL, NULL, 'unparseable_file', error, NULL, NULL, $batch_id, $now
FROM batch_files WHERE status = 'rejected';
