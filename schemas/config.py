"""Settings from the environment, with defaults for the local stack: the one settings object.

Every knob is an environment variable so the same code runs from the local stack,
docker-compose and CI without edits. This module is the only place that reads them
(``load()``), and it sits in the bottom layer (schemas/) so that streams/, connectors/,
load/ and the CLI all take their settings from here without importing one another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_KEY_ENV = "CREDITSTREAM_DATA_KEY"
DATA_KEY_PREVIOUS_ENV = "CREDITSTREAM_DATA_KEY_PREVIOUS"
WEBHOOKS_LOOPBACK_ENV = "CREDITSTREAM_WEBHOOKS_ALLOW_LOOPBACK"
WEBHOOKS_PRIVATE_ENV = "CREDITSTREAM_WEBHOOKS_ALLOW_PRIVATE"
OPERATOR_KEY_ENV = "CREDITSTREAM_OPERATOR_KEY"


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
    # Brokers of the local stack: 1, or 3 for the fault runs (`stack up --brokers 3`).
    kafka_brokers: int = 1
    # The field-encryption key (urlsafe base64, 32 bytes) and the keys being rotated out
    # (connectors/pg/crypto.py); unset: the local stack's generated key.
    data_key: str | None = None
    data_keys_previous: tuple[str, ...] = ()
    # Webhook URLs on loopback (development) or private networks (docs/connectors.md).
    webhooks_allow_loopback: bool = False
    webhooks_allow_private: bool = False
    # A py-spy output path: the bench runs its worker under py-spy (load/bench.py).
    bench_profile: str | None = None
    # The platform operators' key for the policy lab's console pages and /ops/v1/ (a shadow
    # engine's decisions: never a lender's); unset, those answer 401 (docs/policy-lab.md).
    operator_key: str | None = field(default=None, repr=False)

    @property
    def kafka_replication(self) -> int:
        """Replicas per partition: every broker up to three."""
        return min(self.kafka_brokers, 3)

    @property
    def kafka_min_insync(self) -> int:
        """With three replicas an acknowledged write is on two brokers, so losing any one
        broker loses nothing and leaves the partition writable."""
        return 2 if self.kafka_replication >= 3 else 1

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


def brokers_file(state_dir: Path) -> Path:
    """Where `creditstream stack up` records how many brokers the local stack runs."""
    return state_dir / "kafka-brokers"


def _stack_brokers(state_dir: Path) -> int:
    try:
        return max(1, int(brokers_file(state_dir).read_text().strip()))
    except (FileNotFoundError, ValueError):
        return 1


def broker_port(kafka_port: int, node: int) -> int:
    """Node n (from 1) of the local stack listens on kafka_port + 2(n-1); its controller
    port is the one after it."""
    return kafka_port + 2 * (node - 1)


def load() -> Settings:
    """The settings as the environment (and the local stack's state folder) gives them now."""
    kafka_port = int(_env("CREDITSTREAM_KAFKA_PORT", "19092"))
    state_dir = Path(_env("CREDITSTREAM_STATE_DIR", str(REPO_ROOT / ".state"))).resolve()
    brokers = int(_env("CREDITSTREAM_KAFKA_BROKERS", str(_stack_brokers(state_dir))))
    # Every broker in the bootstrap list: a client started while one is down still connects.
    bootstrap = ",".join(f"127.0.0.1:{broker_port(kafka_port, n)}" for n in range(1, brokers + 1))
    return Settings(
        state_dir=state_dir,
        kafka_port=kafka_port,
        kafka_controller_port=int(_env("CREDITSTREAM_KAFKA_CONTROLLER_PORT", str(kafka_port + 1))),
        kafka_bootstrap=_env("CREDITSTREAM_KAFKA_BOOTSTRAP", bootstrap),
        kafka_brokers=brokers,
        kafka_heap=_env("CREDITSTREAM_KAFKA_HEAP", "768m"),
        pg_url_override=os.environ.get("CREDITSTREAM_PG_URL") or None,
        worker_web_port=int(_env("CREDITSTREAM_WORKER_WEB_PORT", "16066")),
        gateway_port=int(_env("CREDITSTREAM_GATEWAY_PORT", "18080")),
        data_key=os.environ.get(DATA_KEY_ENV) or None,
        data_keys_previous=tuple(k.strip() for k in os.environ.get(DATA_KEY_PREVIOUS_ENV, "").split(",")
                                 if k.strip()),
        webhooks_allow_loopback=os.environ.get(WEBHOOKS_LOOPBACK_ENV) == "1",
        webhooks_allow_private=os.environ.get(WEBHOOKS_PRIVATE_ENV) == "1",
        bench_profile=os.environ.get("CREDITSTREAM_BENCH_PROFILE") or None,
        operator_key=os.environ.get(OPERATOR_KEY_ENV) or None,
    )
