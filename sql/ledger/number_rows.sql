-- Row numbers of one positionally read file, from its rows' places in
-- `staged` ($first_row is the number of rowid 0); blank lines were kept only
-- to hold their places. Params: $file_seq, $first_row.
UPDATE staged SET row_number = rowid + $first_row
WHERE file_seq = $file_seq;

DELETE FROM staged WHERE file_seq = $file_seq AND reason = 'blank_line';
