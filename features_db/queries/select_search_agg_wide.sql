-- The agg CTE of select_search.sql / select_search_refine.sql read from the build's search table
-- (saesteer.index.search_table): one scan, no GROUP BY. The aggregates slot holds sums / maxima over
-- that table's per-condition columns (saesteer.select.sqlbuild.wide_aggregate_sql), the table slot its
-- validated name.
SELECT feature,
        {{aggregates}}
    FROM {{table}}
