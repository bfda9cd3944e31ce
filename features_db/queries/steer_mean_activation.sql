-- Mean activation (sum_act / n_tokens, 0 where a feature never fired) of the given features on the given
-- conditions of one build (saesteer.steer.build.mean_activations).
-- $1: build_id, $2: condition names, $3: feature ids.
SELECT c.condition, f.feature, COALESCE(s.sum_act, 0.0) / c.n_tokens AS mean_act
FROM conditions c
CROSS JOIN (SELECT UNNEST($3::INTEGER[]) AS feature) f
LEFT JOIN feature_stats s
  ON s.build_id = c.build_id AND s.condition = c.condition AND s.feature = f.feature
WHERE c.build_id = $1 AND list_contains($2::VARCHAR[], c.condition) AND c.n_tokens > 0
