-- Mean activation over the tokens where each feature fires (sum_act / n_active) on one condition of one
-- build: the feature's typical activation when on (saesteer.eval.recipes.active_means).
-- $1: build_id, $2: condition name, $3: feature ids.
SELECT feature, sum_act / n_active AS active_mean
FROM feature_stats
WHERE build_id = $1 AND condition = $2 AND list_contains($3::INTEGER[], feature) AND n_active > 0
