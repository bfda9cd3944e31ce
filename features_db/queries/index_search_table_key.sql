-- What a build's search table depends on: its conditions (by name) and how each was produced.
-- $build: build id.
SELECT condition, source_hash, CAST(completed_at AS VARCHAR) AS completed_at
FROM conditions
WHERE build_id = $build
ORDER BY condition
