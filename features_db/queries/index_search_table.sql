-- The search table of one build (saesteer.index.search_table): one row per feature that has a
-- feature_stats row in the build, one group of columns per condition i (conditions ordered by name):
--   n{i} n_active, s{i} sum_act, q{i} sum_sq, b{i} n_bos_active (0 where the feature has no row there),
--   p{i} whether the feature has a row in condition i.
-- A search reads it in one scan without GROUP BY (select_search_agg_wide.sql). Written at build / merge
-- time. Slots (filled by saesteer.index.search_table): the table slot is a validated name
-- (search_<hash of the build id>_<hash of the conditions>), the columns slot the per-condition
-- aggregates, with the condition names bound as $c0, $c1, ...
CREATE OR REPLACE TABLE {{table}} AS
SELECT s.feature,
    {{columns}}
FROM feature_stats s
WHERE s.build_id = $build
GROUP BY s.feature
ORDER BY s.feature
