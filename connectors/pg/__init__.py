"""PostgreSQL adapter: migrations, the decision ledger, keys and subscriptions."""
