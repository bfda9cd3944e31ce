-- The conditions table of one build's search table (saesteer.index.search_table.SearchTable.conds_table):
-- per condition ci with a stored default score, what every default search of that target computes over
-- the whole search table:
--   rank, cut   the stored score of its rank-th best feature ($rank = $skip + 1) among those the default
--               filters keep (active on it, the stored random-token verdict), NULL when fewer are kept;
--   n_rows      the features with a row in the build, n_active those active on it, n_kept those the
--               default filters keep (the filter step counts of the default search).
-- Slots: the table slot is a validated name (search_<hash of the build id>_<hash of the conditions>_conds),
-- the conds slot one SELECT per condition over the search table.
CREATE OR REPLACE TABLE {{table}} AS
{{conds}}
