"""HTTP ingest gateway: tenant API keys, validation, authorization, idempotent produce."""
