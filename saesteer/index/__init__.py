"""The DuckDB feature-statistics index: schema, collection, builds, shards."""
