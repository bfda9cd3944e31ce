-- Rows of condition_signals for the exported builds ($build_ids: VARCHAR[]).
SELECT *
FROM condition_signals
WHERE list_contains($build_ids, build_id);
