-- The conditions table of a build's search table (SearchTable.conds_table; index_search_conds.sql).
-- The table slot is a validated name.
SELECT ci, rank, cut, n_rows, n_active, n_kept FROM {{table}} ORDER BY ci
