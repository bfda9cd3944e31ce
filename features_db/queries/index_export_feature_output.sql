-- Rows of feature_output for the exported builds ($build_ids: VARCHAR[]); JSON columns as text.
SELECT *
FROM feature_output
WHERE list_contains($build_ids, build_id);
