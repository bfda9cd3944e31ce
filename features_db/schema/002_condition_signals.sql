-- saesteer feature-statistics index, schema version 2: domain signals per condition.
-- For each condition, how many of its counted tokens are of a kind that marks a text's domain rather
-- than its label (digits, punctuation/symbols, code characters, newlines; saesteer.index.domain.SIGNALS).
-- The share is n_tokens / conditions.n_tokens; tokens per document is conditions.n_tokens / n_docs.
-- Written in the same transaction as the condition's other rows. Conditions built before version 2
-- have no rows here: the domain-confound check then cannot be computed for them (and says so).

CREATE TABLE IF NOT EXISTS condition_signals (
    build_id   VARCHAR NOT NULL,
    condition  VARCHAR NOT NULL,
    signal     VARCHAR NOT NULL,      -- digit | punct | code | newline
    n_tokens   BIGINT NOT NULL,       -- counted tokens of that kind (a token may be of several kinds)
    PRIMARY KEY (build_id, condition, signal)
);
