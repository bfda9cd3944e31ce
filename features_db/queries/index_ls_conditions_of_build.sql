-- The conditions of one build, by name, and whether each is a random-token baseline
-- (saesteer.steer.build). $1: build_id.
SELECT condition, is_random
FROM conditions
WHERE build_id = $1
ORDER BY condition
