"""API keys: ``csk_<key id>_<secret>``. Only SHA-256 of the secret is stored.

The secret is 32 random bytes, so a plain hash is as strong as a slow one here; the
comparison is constant-time. Keys are never logged: only their key id is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

PREFIX = "csk"


@dataclass(frozen=True)
class Scope:
    """What a key may publish: its tenant, event types, and the parties and programs it
    speaks for (``*`` means any)."""

    key_id: str
    tenant: str
    event_types: frozenset[str]
    parties: frozenset[str] = field(default_factory=frozenset)
    programs: frozenset[str] = field(default_factory=frozenset)


def new_key() -> tuple[str, str, str]:
    """(key id, full key to hand out once, hash to store)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{PREFIX}_{key_id}_{secret}", hash_secret(secret)


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of a key's secret: what ``api_keys.secret_hash`` stores."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(key: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    if not key.isascii():
        # Keys are ASCII (hex id, urlsafe base64 secret). Anything else is refused here: a
        # header with undecodable bytes would otherwise fail to hash (a 500 whose exception
        # object carries the whole key into error logs and trackers).
        return None
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1], parts[2]


def matches(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
