-- The top-k features of a search (saesteer.select.search), plus how many features each filter step kept.
-- Compiled by saesteer.select.sqlbuild.compile_search: the {{...}} slots receive generated fragments made
-- of column names, keywords and $parameters only; every value is bound.
-- Result: one row per returned feature (feature, score, rank) with the step counts repeated on each row,
-- or a single row with feature = NULL when nothing is left (the counts say which step emptied it).
WITH cond AS (
    SELECT condition,
           (condition = $target)::DOUBLE                                                   AS w_t,
           list_contains($contrast::VARCHAR[], condition)::DOUBLE                                     AS w_c,
           list_contains($random::VARCHAR[], condition)::DOUBLE                                       AS w_r,
           (NOT is_random)::DOUBLE                                                         AS w_nr,
           (condition = $target OR list_contains($contrast::VARCHAR[], condition))::DOUBLE            AS w_e,
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
    SELECT feature, {{helpers}}{{score}} AS score, {{predicates}}
    FROM agg
),
counts AS (
    SELECT {{counts}}
    FROM ({{row_counts}}) r, empty e  -- the real rows' counts: over scored, or stored (default search)
),
top AS (
    SELECT feature, score, row_number() OVER (ORDER BY score {{order}} NULLS LAST, feature) AS rank
    FROM (
        SELECT feature, score FROM scored
        WHERE {{keep}}{{cut}}  -- cut: AND score >= the stored cut (saesteer.index.search_table.CUT_RANK)
        ORDER BY score {{order}} NULLS LAST, feature
        LIMIT $top_k
    )
)
SELECT counts.*, top.feature, top.score, top.rank
FROM counts LEFT JOIN top ON TRUE
ORDER BY top.rank NULLS LAST
