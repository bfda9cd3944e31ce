-- 1 if the build row exists ($1 = build_id).
SELECT count(*) FROM builds WHERE build_id = $1;
