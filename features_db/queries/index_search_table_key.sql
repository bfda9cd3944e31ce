-- What a build's search tables depend on: its conditions (by name), how each was produced, and what the
-- derived columns use (token counts, random or not, label key). $build: build id.
SELECT condition, source_hash, CAST(completed_at AS VARCHAR) AS completed_at, n_tokens, is_random, label_key
FROM conditions
WHERE build_id = $build
ORDER BY condition
