-- Personal data, in one place: the name and tax id of each registered party, encrypted.
-- Written by `creditstream parties sync` from registry.borrower events; nothing else in
-- the database holds a name or a tax id (docs/security.md, "Personal data").

CREATE TABLE IF NOT EXISTS parties (
    party_id        text        PRIMARY KEY,
    tenant          text        NOT NULL,
    kind            text        NOT NULL,
    program_id      text,
    -- AES-256-GCM (connectors/pg/crypto.py), bound to the column and the party id.
    name_enc        text        NOT NULL,
    tax_id_enc      text        NOT NULL,
    -- HMAC-SHA256 of the normalised tax id: lookup by tax id without decrypting.
    tax_id_hmac     text        NOT NULL,
    -- Fingerprint of the key that sealed the row, so a rotation knows what to re-seal.
    key_id          text        NOT NULL,
    event_id        text        NOT NULL,
    registered_at   timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS parties_tax_id_hmac ON parties (tax_id_hmac);
CREATE INDEX IF NOT EXISTS parties_key_id ON parties (key_id);
