-- The stored logit-lens top tokens of some features, read from a build's search table (top_tokens: the
-- list select_feature_output.sql would give; NULL where the build had no feature_output rows for the
-- feature when the table was written). $features: INTEGER[] of feature ids. The table slot is a
-- validated name (saesteer.index.search_table).
SELECT t.feature, t.top_tokens
FROM {{table}} t
SEMI JOIN (SELECT unnest($features::INTEGER[]) AS feature) f ON t.feature = f.feature
