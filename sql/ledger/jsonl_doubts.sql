-- Whether DuckDB's JSON reader (rows_jsonl_typed.sql) would give a JSONL
-- file's rows exactly as the exact path reads them: its line count (the
-- exact path numbers blank lines too, which the JSON reader skips) and the
-- lines that could read differently:
-- - a "quantity" number of more than 15 characters (the reader keeps only
--   its double's shortest text, which is the written decimal whenever it has
--   at most 15 digits), or a quantity that is neither a number nor a string
--   nor null (true, an object, ...: the VARCHAR reader would make it text);
-- - a text field holding anything but a string or null (a number, true, an
--   object, ...), for the same reason. The top-level key itself is always in
--   the line as written, so this never misses one; a nested key of the same
--   name only costs the exact path;
-- - an escaped ASCII letter (a key could spell "quantity" that way and escape
--   both the searches above and the exact path's token search).
-- A record separator or invalid UTF-8 makes this reader fail, as it makes
-- the exact path's; a repeated key makes the JSON reader fail.
-- Params: {{path}}, {{delim}}, {{max_line}}.
SELECT count(*) AS lines,
       count(*) FILTER (WHERE regexp_matches(raw, '"quantity"\s*:\s*(-?[0-9][0-9.eE+-]{15}|[^"\s0-9-])|"(tenantId|metric|customerRef|ts|idempotencyKey|resourceId)"\s*:\s*[^"\sn]')
                           OR (contains(raw, '\u00') AND regexp_matches(raw, '\\u00[4-7]'))) AS doubtful
FROM read_csv({{path}}, columns = {'raw': 'VARCHAR'}, header = false,
              delim = {{delim}}, quote = '', escape = '', auto_detect = false,
              max_line_size = {{max_line}})
