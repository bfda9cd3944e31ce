-- The search table of one build (saesteer.index.search_table): one row per feature that has a
-- feature_stats row in the build, sorted by feature, one group of columns per condition i (conditions
-- ordered by name):
--   n{i} n_active, s{i} sum_act, q{i} sum_sq, b{i} n_bos_active (0 where the feature has no row there),
--   p{i} whether the feature has a row in condition i;
-- and the derived columns every search would otherwise recompute from them (the derived slot):
--   g{j}_n / nr_n / a_n the sum of n{i} over the non-random conditions of label key j / over every
--   non-random condition / over every condition, bos_n the sum of b{i}, nr_rows the number of non-random
--   conditions with a row, nr_min_freq the drop_dense input, z{i} the default score of condition i against
--   the rest of its label, k{i} the default random-token filter's verdict for target i
--   (saesteer.index.search_table.derived_columns);
-- and top_tokens, the feature's stored logit-lens tokens (feature_output) best first, NULL where it has
-- none (a search then reads feature_output).
-- A search reads it in one scan without GROUP BY (select_search_agg_wide.sql). Written at build / merge
-- time. Slots (filled by saesteer.index.search_table): the table slot is a validated name
-- (search_<hash of the build id>_<hash of the conditions>), the columns slot the per-condition
-- aggregates, with the condition names bound as $c0, $c1, ..., and 1 / n_tokens as $inv0, $inv1, ...
CREATE OR REPLACE TABLE {{table}} AS
SELECT w.*,
    {{derived}},
    o.top_tokens
FROM (
    SELECT s.feature,
        {{columns}}
    FROM feature_stats s
    WHERE s.build_id = $build
    GROUP BY s.feature
) w
LEFT JOIN (
    SELECT feature, list(token ORDER BY rank) AS top_tokens  -- as select_feature_output.sql lists them
    FROM feature_output
    WHERE build_id = $build
    GROUP BY feature
) o ON o.feature = w.feature
ORDER BY w.feature
