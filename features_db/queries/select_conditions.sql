-- The conditions of one build: targets and contrasts first (by name), random-token baselines last.
-- $build: build id.
SELECT condition, label_key, label_value, is_random, n_docs, n_tokens, n_bos
FROM conditions
WHERE build_id = $build
ORDER BY is_random, condition
