-- The stored logit-lens top tokens (feature_output) of some features, best first.
-- $build: build id; $features: INTEGER[] of feature ids.
SELECT o.feature,
       list(o.token ORDER BY o.rank)    AS tokens,
       list(o.token_id ORDER BY o.rank) AS token_ids,
       list(o.logit ORDER BY o.rank)    AS logits
FROM feature_output o
SEMI JOIN (SELECT unnest($features::INTEGER[]) AS feature) f ON o.feature = f.feature
WHERE o.build_id = $build
GROUP BY o.feature
