"""Settings from the environment, with defaults for the local stack.

Every knob is an environment variable so the same code runs from the local stack,
docker-compose and CI without edits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    kafka_port: int
    kafka_controller_port: int
    kafka_bootstrap: str
    kafka_heap: str
    pg_url_override: str | None
    worker_web_port: int
    gateway_port: int

    @property
    def pg_url_file(self) -> Path:
        return self.state_dir / "postgres" / "url"

    @property
    def pg_url(self) -> str:
        """The database URL: configured, or the one the local stack wrote."""
        if self.pg_url_override:
            return self.pg_url_override
        try:
            return self.pg_url_file.read_text().strip()
        except FileNotFoundError:
            raise RuntimeError(
                "no PostgreSQL configured: set CREDITSTREAM_PG_URL or run `creditstream stack up`"
            ) from None


def load() -> Settings:
    kafka_port = int(_env("CREDITSTREAM_KAFKA_PORT", "19092"))
    return Settings(
        state_dir=Path(_env("CREDITSTREAM_STATE_DIR", str(REPO_ROOT / ".state"))).resolve(),
        kafka_port=kafka_port,
        kafka_controller_port=int(_env("CREDITSTREAM_KAFKA_CONTROLLER_PORT", str(kafka_port + 1))),
        kafka_bootstrap=_env("CREDITSTREAM_KAFKA_BOOTSTRAP", f"127.0.0.1:{kafka_port}"),
        kafka_heap=_env("CREDITSTREAM_KAFKA_HEAP", "768m"),
        pg_url_override=os.environ.get("CREDITSTREAM_PG_URL") or None,
        worker_web_port=int(_env("CREDITSTREAM_WORKER_WEB_PORT", "16066")),
        gateway_port=int(_env("CREDITSTREAM_GATEWAY_PORT", "18080")),
    )
