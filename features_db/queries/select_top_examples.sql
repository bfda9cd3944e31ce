-- The strongest stored examples of one feature across the conditions of a build.
-- $build: build id; $feature: feature id; $n: how many.
SELECT condition, rank, activation, doc_id, position, context, context_pos
FROM top_examples
WHERE build_id = $build AND feature = $feature
ORDER BY activation DESC, condition, rank
LIMIT $n
