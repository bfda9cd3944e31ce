-- Rows of conditions for the exported builds ($build_ids: VARCHAR[]); JSON columns as text.
SELECT * REPLACE (source::VARCHAR AS source)
FROM conditions
WHERE list_contains($build_ids, build_id);
