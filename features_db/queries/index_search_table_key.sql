-- What a build's search tables depend on: its conditions (by name), how each was produced, and what the
-- derived columns use (token counts, random or not, label key); and, on every row, the search tables
-- present for the build (current or stale: their names start with $prefix = 'search_<hash of the build id>_').
-- $build: build id.
SELECT condition, source_hash, CAST(completed_at AS VARCHAR) AS completed_at, n_tokens, is_random, label_key,
       (SELECT list(table_name ORDER BY table_name) FROM duckdb_tables()
        WHERE starts_with(table_name, $prefix)) AS present
FROM conditions
WHERE build_id = $build
ORDER BY condition
