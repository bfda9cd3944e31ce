-- Build ids starting with a prefix ($1; '' for all).
SELECT build_id FROM builds WHERE starts_with(build_id, $1) ORDER BY created_at, build_id;
