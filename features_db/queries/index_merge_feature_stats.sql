-- Merge one (build, condition) of several shard exports into feature_stats: the sufficient statistics
-- are summed, max_act is the max, histograms are summed bin by bin.
-- $files: Parquet files (feature_stats.parquet of each shard); $build_id, $condition.
INSERT INTO feature_stats
WITH src AS (
    SELECT * FROM read_parquet($files) WHERE build_id = $build_id AND condition = $condition
),
sums AS (
    SELECT
        feature,
        sum(n_active) AS n_active,
        sum(n_docs_active) AS n_docs_active,
        sum(sum_act) AS sum_act,
        sum(sum_sq) AS sum_sq,
        max(max_act) AS max_act,
        sum(n_bos_active) AS n_bos_active
    FROM src
    GROUP BY feature
),
bins AS (
    SELECT feature, i, sum(c) AS c
    FROM (SELECT feature, unnest(hist) AS c, generate_subscripts(hist, 1) AS i FROM src)
    GROUP BY feature, i
),
hists AS (
    SELECT feature, list(c::BIGINT ORDER BY i) AS hist FROM bins GROUP BY feature
)
SELECT
    $build_id, $condition, s.feature, s.n_active, s.n_docs_active, s.sum_act, s.sum_sq, s.max_act,
    s.n_bos_active, h.hist
FROM sums s
JOIN hists h USING (feature)
ORDER BY s.feature;
