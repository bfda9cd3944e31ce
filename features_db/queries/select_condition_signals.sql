-- Domain signals of some conditions of one build ($build: VARCHAR, $conditions: VARCHAR[]).
SELECT condition, signal, n_tokens
FROM condition_signals
WHERE build_id = $build AND list_contains($conditions, condition)
ORDER BY condition, signal;
