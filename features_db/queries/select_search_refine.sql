-- Like select_search.sql, for a score that is expensive to aggregate but has cheap bounds (the AUROC from
-- the histograms, bounded by the activation frequencies): the filters and the bounds run over every
-- feature, the exact score only over the features whose upper bound reaches the k-th best lower bound.
-- The result is the exact top k. Slots {{...}} are filled by saesteer.select.sqlbuild.compile_search.
WITH cond AS (
    SELECT condition,
           (condition = $target)::DOUBLE                                                   AS w_t,
           list_contains($contrast::VARCHAR[], condition)::DOUBLE                          AS w_c,
           list_contains($random::VARCHAR[], condition)::DOUBLE                            AS w_r,
           (NOT is_random)::DOUBLE                                                         AS w_nr,
           (condition = $target OR list_contains($contrast::VARCHAR[], condition))::DOUBLE AS w_e,
           1.0 / greatest(n_tokens, 1)                                                     AS inv_n
    FROM conditions
    WHERE build_id = $build
),
agg AS {{stream}}(
    -- one row per feature with a row in the build: select_search_agg_rows.sql (GROUP BY over feature_stats)
    -- or select_search_agg_wide.sql (one scan of the build's search table; then agg streams into scored,
    -- NOT MATERIALIZED, and the number of features with a row is the table's row count)
    {{agg}}
),
empty AS (
    -- the features with no row at all (never active anywhere): one pseudo-row of empty aggregates,
    -- weighted by their number w, counted apart (the real rows are counted with count(*))
    SELECT greatest($d_sae - (SELECT count(*) FROM {{agg_rows}}), 0) AS w, {{empty_predicates}}
    FROM (SELECT NULL::INTEGER AS feature, {{empty}})
),
scored AS (
    SELECT feature, {{lower}} AS lower_bound, {{upper}} AS upper_bound, {{predicates}}
    FROM agg
),
counts AS (
    SELECT {{counts}}
    FROM ({{row_counts}}) r, empty e  -- the real rows' counts: over scored, or stored (default search)
),
kept AS (
    SELECT feature, lower_bound, upper_bound FROM scored WHERE {{keep}}
),
cutoff AS (
    SELECT coalesce(min(lower_bound), -1e308) - 1e-9 AS lb_k
    FROM (SELECT lower_bound FROM kept ORDER BY lower_bound DESC LIMIT $top_k)
),
cand AS (
    SELECT kept.feature FROM kept, cutoff WHERE kept.upper_bound >= cutoff.lb_k
),
exact AS (
    SELECT s.feature,
        {{exact_aggregates}}
    FROM feature_stats s
    JOIN cond c ON s.condition = c.condition
    SEMI JOIN cand ON s.feature = cand.feature
    WHERE s.build_id = $build
    GROUP BY s.feature
),
rescored AS (
    SELECT feature, {{helpers}}{{score}} AS score FROM exact
),
top AS (
    SELECT feature, score, row_number() OVER (ORDER BY score {{order}} NULLS LAST, feature) AS rank
    FROM (
        SELECT feature, score FROM rescored
        ORDER BY score {{order}} NULLS LAST, feature
        LIMIT $top_k
    )
)
SELECT counts.*, top.feature, top.score, top.rank
FROM counts LEFT JOIN top ON TRUE
ORDER BY top.rank NULLS LAST
