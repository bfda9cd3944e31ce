-- The planned conditions of each build that have not finished ($1 = build_id prefix, '' for all), with the
-- process that planned them (schema >= 3; see features_db/schema/003_planned_conditions.sql).
SELECT p.build_id, p.condition, p.pid, p.host
FROM planned_conditions p
ANTI JOIN conditions c USING (build_id, condition)
WHERE starts_with(p.build_id, $1)
ORDER BY p.build_id, p.condition;
