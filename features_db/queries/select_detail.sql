-- Every feature_stats row of the given features in one build (the per-condition detail of a search result).
-- $build: build id; $features: INTEGER[] of feature ids.
SELECT s.feature, s.condition, s.n_active, s.n_docs_active, s.sum_act, s.sum_sq, s.max_act, s.n_bos_active, s.hist
FROM feature_stats s
SEMI JOIN (SELECT unnest($features::INTEGER[]) AS feature) f ON s.feature = f.feature
WHERE s.build_id = $build
ORDER BY s.feature, s.condition
