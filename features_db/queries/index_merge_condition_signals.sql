-- Merge one (build, condition) of several shard exports into condition_signals (counts summed).
INSERT INTO condition_signals
SELECT $build_id, $condition, signal, sum(n_tokens)::BIGINT
FROM read_parquet($files)
WHERE build_id = $build_id AND condition = $condition
GROUP BY signal
ORDER BY signal;
