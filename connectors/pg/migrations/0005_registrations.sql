-- Ingest gateway: which tenant owns each program, borrower and pledged machine it registered.
-- The first tenant to register an id through the gateway owns it; another tenant's events
-- that register, re-register or name it are refused (docs/security.md, "Keys, tenants and
-- consent"). Rows are never updated by the gateway: an operator moves an id by hand.

CREATE TABLE IF NOT EXISTS registrations (
    kind          text        NOT NULL CHECK (kind IN ('program', 'party', 'machine')),
    id            text        NOT NULL,
    tenant        text        NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id)
);
