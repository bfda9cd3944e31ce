-- Rows of top_examples for the exported builds ($build_ids: VARCHAR[]); JSON columns as text.
SELECT *
FROM top_examples
WHERE list_contains($build_ids, build_id);
