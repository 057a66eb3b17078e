"""Field encryption for secrets and personal data at rest in PostgreSQL (AES-256-GCM).

The key comes from ``CREDITSTREAM_DATA_KEY`` (32 bytes, urlsafe base64). The local stack
has none configured, so it keeps a generated key in ``.state/data.key`` (mode 0600);
production sets the environment variable from its secret store.
"""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from creditstream import config

ENV = "CREDITSTREAM_DATA_KEY"
PREFIX = "v1:"
# Binds ciphertexts to this use, so a value cannot be moved to another kind of column.
AAD = b"creditstream.field.v1"


def _decode(key_b64: str) -> bytes:
    key = base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))
    if len(key) != 32:
        raise ValueError(f"{ENV} must be 32 bytes (urlsafe base64), got {len(key)}")
    return key


@lru_cache(maxsize=1)
def data_key() -> bytes:
    configured = os.environ.get(ENV)
    if configured:
        return _decode(configured)
    path = config.load().state_dir / "data.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    return _decode(path.read_text().strip())


def seal(plaintext: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(data_key()).encrypt(nonce, plaintext.encode(), AAD)
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(token: str) -> str:
    if not token.startswith(PREFIX):
        raise ValueError("not an encrypted field")
    raw = base64.urlsafe_b64decode(token[len(PREFIX):])
    return AESGCM(data_key()).decrypt(raw[:12], raw[12:], AAD).decode()
