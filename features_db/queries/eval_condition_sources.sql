-- Where each text condition of one build came from (its source JSON: a shipped corpus's list sources are
-- named "<corpus>:<lang>:<split>"), for saesteer.eval.recipes.check_index_corpus.
-- $1: build_id.
SELECT condition, CAST(source AS VARCHAR) AS source
FROM conditions
WHERE build_id = $1 AND NOT is_random
ORDER BY condition
