-- The finished conditions of a build ($build) that have no condition_signals rows: imported from an
-- export written before schema 2, or built before the index was migrated.
SELECT c.condition
FROM conditions c
WHERE c.build_id = $build
  AND NOT EXISTS (
      SELECT 1 FROM condition_signals s WHERE s.build_id = c.build_id AND s.condition = c.condition
  )
ORDER BY c.condition;
