-- saesteer feature-statistics index, schema version 3: what a build run set out to index.
-- `saesteer index build` records its conditions here, in the transaction of its first finished condition
-- (and again with each later one). A planned condition without a `conditions` row means the run stopped
-- before finishing it: `saesteer index ls` marks that build "interrupted; rerun the same command to
-- resume", and `saesteer index rm` refuses to delete it while the planning process (pid on host) lives.
-- Each run replaces its build's rows. Builds written before version 3 (and merged ones) have no rows.

CREATE TABLE IF NOT EXISTS planned_conditions (
    build_id     VARCHAR NOT NULL,
    condition    VARCHAR NOT NULL,
    source_hash  VARCHAR NOT NULL,
    planned_at   TIMESTAMP NOT NULL,
    pid          INTEGER NOT NULL,      -- the process that ran the build
    host         VARCHAR NOT NULL,      -- ... on this machine
    PRIMARY KEY (build_id, condition)
);
