-- The search tables present for one build (current or stale). $prefix: 'search_<build id>_'.
SELECT table_name
FROM duckdb_tables()
WHERE starts_with(table_name, $prefix)
ORDER BY table_name
