-- 1 if the index has the table $name (older schema versions lack some), else 0.
SELECT count(*) FROM duckdb_tables() WHERE table_name = $name;
