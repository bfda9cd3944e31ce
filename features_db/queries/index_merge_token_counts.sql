-- Merge one (build, condition) of several shard exports into token_counts (counts summed).
INSERT INTO token_counts
SELECT $build_id, $condition, token_id, sum(count)::BIGINT
FROM read_parquet($files)
WHERE build_id = $build_id AND condition = $condition
GROUP BY token_id
ORDER BY token_id;
