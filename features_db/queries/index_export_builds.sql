-- Rows of builds for the exported builds ($build_ids: VARCHAR[]); JSON columns as text.
SELECT * REPLACE (versions::VARCHAR AS versions, settings::VARCHAR AS settings)
FROM builds
WHERE list_contains($build_ids, build_id);
