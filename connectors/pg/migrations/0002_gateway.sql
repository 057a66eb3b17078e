-- Ingest gateway: API keys per tenant (only hashes stored) and accepted event ids.

CREATE TABLE IF NOT EXISTS api_keys (
    key_id      text        PRIMARY KEY,
    tenant      text        NOT NULL,
    secret_hash text        NOT NULL,
    event_types text[]      NOT NULL,
    parties     text[]      NOT NULL DEFAULT '{}',
    programs    text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant);

CREATE TABLE IF NOT EXISTS accepted_events (
    tenant      text        NOT NULL,
    event_id    text        NOT NULL,
    event_type  text        NOT NULL,
    topic       text        NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, event_id)
);
