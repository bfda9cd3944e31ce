-- The tables of the index that hold rows per build (a build_id column): what `saesteer index rm` deletes from.
SELECT table_name FROM information_schema.columns
WHERE column_name = 'build_id' AND table_schema = 'main'
ORDER BY table_name = 'builds', table_name;
