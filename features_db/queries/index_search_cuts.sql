-- The cuts table of one build's search table (saesteer.index.search_table, SearchTable.cuts_table): per
-- condition ci, the stored default score of its rank-th best feature ($rank = $skip + 1) among those the
-- default filters keep (NULL when fewer are kept). Slots: the table slot is a validated name
-- (search_<hash of the build id>_<hash of the conditions>_cuts), the cuts slot one SELECT per condition
-- with a stored score, over the search table.
CREATE OR REPLACE TABLE {{table}} AS
{{cuts}}
