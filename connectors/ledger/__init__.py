"""PostgreSQL ledger: limit updates and alerts from Kafka into the decision tables."""
