-- Rows of token_counts for the exported builds ($build_ids: VARCHAR[]); JSON columns as text.
SELECT *
FROM token_counts
WHERE list_contains($build_ids, build_id);
