-- saesteer feature-statistics index, schema version 1.
-- Applied by saesteer.index.db.IndexDb on a new database; later versions add NNN_*.sql files.
-- Conventions:
--   * a "build" is one (model, SAE, hook, settings) combination; several builds share one file;
--   * a "condition" is a labelled corpus ("language=fr") or a random-token baseline ("random=uniform");
--   * feature_stats is sparse: a feature that never fired in a condition has no row there
--     (read it as n_active = 0, sums 0); conditions.n_tokens is the denominator for every feature;
--   * everything a condition writes is committed in one transaction together with its conditions row,
--     so a conditions row means "complete" and a crash leaves no partial condition.

CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER NOT NULL,
    applied_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS builds (
    build_id        VARCHAR PRIMARY KEY,  -- stable hash of model, SAE, hook and settings
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    model_id        VARCHAR NOT NULL,
    model_hash      VARCHAR NOT NULL,
    sae_id          VARCHAR NOT NULL,
    sae_hash        VARCHAR NOT NULL,
    hook_name       VARCHAR NOT NULL,
    d_model         INTEGER NOT NULL,
    d_sae           INTEGER NOT NULL,
    dtype           VARCHAR NOT NULL,
    tokenizer       VARCHAR NOT NULL,
    threshold       DOUBLE NOT NULL,      -- a token counts as active when activation > threshold
    hist_edges      DOUBLE[] NOT NULL,    -- n_bins + 1 log-spaced edges for positive activations
    top_k           INTEGER NOT NULL,     -- top examples kept per feature and condition
    context_window  INTEGER NOT NULL,     -- tokens kept each side of a top example
    exclude         VARCHAR[] NOT NULL,   -- excluded token kinds: bos, pad, special
    max_seq_len     INTEGER NOT NULL,
    versions        JSON NOT NULL,        -- package versions
    settings        JSON NOT NULL         -- the rest of the build config (batch size, seeds, shard, ...)
);

CREATE TABLE IF NOT EXISTS conditions (
    build_id      VARCHAR NOT NULL,
    condition     VARCHAR NOT NULL,       -- "key=value", e.g. "language=fr" or "random=uniform"
    label_key     VARCHAR NOT NULL,
    label_value   VARCHAR NOT NULL,
    is_random     BOOLEAN NOT NULL,       -- a random-token baseline
    source        JSON NOT NULL,          -- where the text came from (files, dataset, generator + seed)
    source_hash   VARCHAR NOT NULL,
    n_docs        BIGINT NOT NULL,
    n_tokens      BIGINT NOT NULL,        -- tokens counted (after exclusions): the denominator
    n_bos         BIGINT NOT NULL,        -- BOS positions seen (for the BOS-only density filter)
    started_at    TIMESTAMP,
    completed_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (build_id, condition)
);

CREATE TABLE IF NOT EXISTS feature_stats (
    build_id       VARCHAR NOT NULL,
    condition      VARCHAR NOT NULL,
    feature        INTEGER NOT NULL,
    n_active       BIGINT NOT NULL,       -- counted tokens with activation > threshold
    n_docs_active  BIGINT NOT NULL,       -- documents with at least one active counted token
    sum_act        DOUBLE NOT NULL,       -- sum of activations over counted tokens
    sum_sq         DOUBLE NOT NULL,       -- sum of squared activations over counted tokens
    max_act        DOUBLE NOT NULL,
    n_bos_active   BIGINT NOT NULL,       -- BOS positions where it fired (BOS is not counted above)
    hist           BIGINT[] NOT NULL      -- counts of positive activations per builds.hist_edges bin
);

CREATE TABLE IF NOT EXISTS top_examples (
    build_id     VARCHAR NOT NULL,
    condition    VARCHAR NOT NULL,
    feature      INTEGER NOT NULL,
    rank         SMALLINT NOT NULL,       -- 0 = strongest
    activation   REAL NOT NULL,
    doc_id       BIGINT NOT NULL,
    position     INTEGER NOT NULL,        -- token position in the document
    context      VARCHAR[] NOT NULL,      -- token strings around it
    context_pos  SMALLINT NOT NULL        -- index of the activating token inside context
);

CREATE TABLE IF NOT EXISTS feature_output (
    -- logit lens of each decoder row (W_dec[f] @ W_U), top tokens, computed once per build
    build_id  VARCHAR NOT NULL,
    feature   INTEGER NOT NULL,
    rank      SMALLINT NOT NULL,
    token_id  INTEGER NOT NULL,
    token     VARCHAR NOT NULL,
    logit     REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS token_counts (
    -- unigram counts of counted tokens per condition (target-token mass for output scores,
    -- the unigram random-token baseline)
    build_id   VARCHAR NOT NULL,
    condition  VARCHAR NOT NULL,
    token_id   INTEGER NOT NULL,
    count      BIGINT NOT NULL
);

INSERT INTO schema_version (version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM schema_version);
