-- The unigram token counts of one condition ($build, $condition).
SELECT token_id, count
FROM token_counts
WHERE build_id = $build AND condition = $condition
ORDER BY token_id;
