"""Personal data of parties: encrypted at rest in PostgreSQL, in one table (docs/security.md)."""
