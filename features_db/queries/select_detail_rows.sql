-- Every feature_stats row of the given features, read from a build's rows table (clustered by feature:
-- saesteer.index.search_table), ci the condition's index in the search table's column order.
-- $features: INTEGER[] of feature ids. The table slot is a validated name.
SELECT r.feature, r.ci, r.n_active, r.n_docs_active, r.sum_act, r.sum_sq, r.max_act, r.n_bos_active, r.hist
FROM {{table}} r
SEMI JOIN (SELECT unnest($features::INTEGER[]) AS feature) f ON r.feature = f.feature
ORDER BY r.feature, r.ci
