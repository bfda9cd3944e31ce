-- Copy one build's feature_output from one export (it is identical in every shard).
INSERT INTO feature_output
SELECT * FROM read_parquet($file) WHERE build_id = $build_id ORDER BY feature, rank;
