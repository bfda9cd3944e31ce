-- The builds of an index with their condition and token totals ($1 = build_id prefix, '' for all).
SELECT
    b.build_id,
    b.model_id,
    b.sae_id,
    b.hook_name,
    b.d_sae,
    count(c.condition) AS n_conditions,
    coalesce(sum(c.n_docs), 0)::BIGINT AS n_docs,
    coalesce(sum(c.n_tokens), 0)::BIGINT AS n_tokens,
    strftime(b.created_at, '%Y-%m-%d %H:%M') AS created
FROM builds b
LEFT JOIN conditions c USING (build_id)
WHERE starts_with(b.build_id, $1)
GROUP BY ALL
ORDER BY min(b.created_at), b.build_id;
