-- The target condition's characteristic tokens: much more frequent (relative to all counted tokens) in the
-- target than in the contrast conditions, from token_counts. Smoothed ratio of relative frequencies:
--   ratio = ((n_t + a) / (N_t + a V)) / ((n_c + a) / (N_c + a V))
-- with N_t, N_c the token totals and V the number of distinct tokens seen.
-- $build, $target, $contrast (VARCHAR[]), $alpha, $min_count, $min_ratio, $max_tokens.
WITH tc AS (
    SELECT token_id,
           coalesce(sum(count) FILTER (WHERE condition = $target), 0)                                AS n_t,
           coalesce(sum(count) FILTER (WHERE list_contains($contrast::VARCHAR[], condition)), 0)      AS n_c
    FROM token_counts
    WHERE build_id = $build AND (condition = $target OR list_contains($contrast::VARCHAR[], condition))
    GROUP BY token_id
),
tot AS (SELECT sum(n_t)::DOUBLE AS nt, sum(n_c)::DOUBLE AS nc, count(*)::DOUBLE AS v FROM tc),
scored AS (
    SELECT token_id, n_t, n_c,
           ((n_t + $alpha) / (tot.nt + $alpha * tot.v)) / ((n_c + $alpha) / (tot.nc + $alpha * tot.v)) AS ratio
    FROM tc, tot
)
SELECT token_id, n_t, n_c, ratio
FROM scored
WHERE n_t >= $min_count AND ratio >= $min_ratio
ORDER BY ratio DESC, token_id
LIMIT $max_tokens
