-- Merge one (build, condition) of several shard exports into top_examples: re-rank the union by
-- activation (desc), then doc_id, then position (the same total order a single build uses), keep $top_k.
INSERT INTO top_examples
SELECT build_id, condition, feature, (rn - 1)::SMALLINT, activation, doc_id, position, context, context_pos
FROM (
    SELECT
        *,
        row_number() OVER (PARTITION BY feature ORDER BY activation DESC, doc_id, position) AS rn
    FROM read_parquet($files)
    WHERE build_id = $build_id AND condition = $condition
)
WHERE rn <= $top_k
ORDER BY feature, rn;
