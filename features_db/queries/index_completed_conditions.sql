-- The finished conditions of one build and their source hashes ($1 = build_id).
SELECT condition, source_hash
FROM conditions
WHERE build_id = $1
ORDER BY condition;
