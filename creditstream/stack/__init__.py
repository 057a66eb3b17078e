"""The local stack: a real Kafka broker (KRaft) and PostgreSQL, started from this repo."""
