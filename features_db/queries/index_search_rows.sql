-- The rows table of one build's search table (saesteer.index.search_table): the build's feature_stats
-- rows clustered by feature, the condition as its index ci in $conditions (the search table's column
-- order, by name), so the detail of a search's few returned features (select_detail_rows.sql) reads a
-- few row groups instead of the whole of feature_stats. The table slot is a validated name
-- (search_<hash of the build id>_<hash of the conditions>_rows). $build: build id.
CREATE OR REPLACE TABLE {{table}} AS
SELECT s.feature,
       (list_position($conditions::VARCHAR[], s.condition) - 1)::SMALLINT AS ci,
       s.n_active, s.n_docs_active, s.sum_act, s.sum_sq, s.max_act, s.n_bos_active, s.hist
FROM feature_stats s
WHERE s.build_id = $build
ORDER BY s.feature, ci
