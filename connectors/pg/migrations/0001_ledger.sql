-- The decision ledger: every limit update as published, the latest per borrower, alerts.

CREATE TABLE IF NOT EXISTS decision_log (
    borrower_id     text        NOT NULL,
    version         bigint      NOT NULL,
    event_id        text        NOT NULL,
    program_id      text        NOT NULL,
    limit_amount    numeric(20, 2) NOT NULL,
    available       numeric(20, 2) NOT NULL,
    currency        char(3)     NOT NULL,
    status          text        NOT NULL,
    policy_version  text        NOT NULL,
    watermark       timestamptz NOT NULL,
    reasons         jsonb       NOT NULL,
    components      jsonb       NOT NULL,
    trigger_event_ids jsonb     NOT NULL,
    payload         jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (borrower_id, version)
);

CREATE TABLE IF NOT EXISTS current_limits (
    borrower_id     text        PRIMARY KEY,
    version         bigint      NOT NULL,
    program_id      text        NOT NULL,
    limit_amount    numeric(20, 2) NOT NULL,
    available       numeric(20, 2) NOT NULL,
    currency        char(3)     NOT NULL,
    status          text        NOT NULL,
    payload         jsonb       NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS current_limits_program ON current_limits (program_id);

CREATE TABLE IF NOT EXISTS alerts (
    alert_id        text        PRIMARY KEY,
    code            text        NOT NULL,
    severity        text        NOT NULL,
    borrower_id     text,
    asset_id        text,
    occurred_at     timestamptz NOT NULL,
    payload         jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_borrower ON alerts (borrower_id, occurred_at);
