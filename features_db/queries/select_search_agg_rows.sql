-- The agg CTE of select_search.sql / select_search_refine.sql read from feature_stats: one GROUP BY over
-- the (feature, condition) rows of the build, joined with the search's condition weights (cond).
SELECT s.feature,
        {{aggregates}}
    FROM feature_stats s
    JOIN cond c ON s.condition = c.condition
    WHERE s.build_id = $build
    GROUP BY s.feature
