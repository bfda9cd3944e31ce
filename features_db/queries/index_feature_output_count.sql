-- How many feature_output rows a build has ($1 = build_id).
SELECT count(*) FROM feature_output WHERE build_id = $1;
