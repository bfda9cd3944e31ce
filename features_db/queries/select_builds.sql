-- Every build, most recent first (saesteer.select.catalog.list_builds).
SELECT build_id, CAST(created_at AS VARCHAR) AS created_at, model_id, sae_id, hook_name, d_model, d_sae, threshold,
       hist_edges
FROM builds
ORDER BY created_at DESC, build_id
