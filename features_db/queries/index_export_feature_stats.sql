-- Rows of feature_stats for the exported builds ($build_ids: VARCHAR[]); JSON columns as text.
SELECT *
FROM feature_stats
WHERE list_contains($build_ids, build_id);
