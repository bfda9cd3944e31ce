-- The finished conditions of an index with the number of features active in each
-- ($1 = build_id prefix, '' for all).
SELECT
    c.build_id,
    c.condition,
    c.is_random,
    c.n_docs,
    c.n_tokens,
    c.n_bos,
    coalesce(a.n_features_active, 0)::BIGINT AS n_features_active,
    strftime(c.completed_at, '%Y-%m-%d %H:%M') AS completed
FROM conditions c
LEFT JOIN (
    SELECT build_id, condition, count(*) FILTER (WHERE n_active > 0) AS n_features_active
    FROM feature_stats
    WHERE starts_with(build_id, $1)
    GROUP BY ALL
) a USING (build_id, condition)
WHERE starts_with(c.build_id, $1)
ORDER BY c.build_id, c.is_random, c.condition;
