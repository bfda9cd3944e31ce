-- The cuts of a build's search table (SearchTable.cuts_table): per condition ci, the stored default score
-- of its rank-th best feature. The table slot is a validated name.
SELECT ci, rank, cut FROM {{table}} WHERE cut IS NOT NULL ORDER BY ci
