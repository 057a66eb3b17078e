"""Field encryption for secrets and personal data at rest in PostgreSQL (AES-256-GCM).

The key comes from ``CREDITSTREAM_DATA_KEY`` (32 bytes, urlsafe base64). The local stack
has none configured, so it keeps a generated key in ``.state/data.key`` (mode 0600);
production sets the environment variable from its secret store.

Rotation: put the new key in ``CREDITSTREAM_DATA_KEY`` and the old ones, comma-separated,
in ``CREDITSTREAM_DATA_KEY_PREVIOUS``; values sealed with an old key still open, and
``creditstream parties rekey`` re-seals the personal data with the new one (docs/security.md).

A ``context`` (for personal data: the column and the row's id) is bound into each
ciphertext as associated data, so a value cannot be copied to another row or column and
still open. Equality lookups (a tax id) use :func:`lookup_hash`, an HMAC under a key
derived from the data key for that purpose only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from creditstream import config

ENV = "CREDITSTREAM_DATA_KEY"
PREVIOUS_ENV = "CREDITSTREAM_DATA_KEY_PREVIOUS"
PREFIX = "v1:"
# Binds ciphertexts to this use, so a value cannot be moved to another kind of column.
AAD = b"creditstream.field.v1"


class DataKeyError(ValueError):
    """A sealed value that no configured key opens: the wrong key, or altered data."""


def _decode(key_b64: str, name: str = ENV) -> bytes:
    try:
        key = base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))
    except ValueError:
        raise DataKeyError(f"{name} is not urlsafe base64") from None
    if len(key) != 32:
        raise DataKeyError(f"{name} must be 32 bytes (urlsafe base64), got {len(key)}")
    return key


@lru_cache(maxsize=1)
def data_key() -> bytes:
    """The current key: from the environment, else the local stack's generated key."""
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


@lru_cache(maxsize=1)
def previous_keys() -> tuple[bytes, ...]:
    """Keys being rotated out: they open old values, they never seal new ones."""
    raw = os.environ.get(PREVIOUS_ENV, "")
    return tuple(_decode(k.strip(), PREVIOUS_ENV) for k in raw.split(",") if k.strip())


def reload() -> None:
    """Read the keys from the environment again (after a test or a rotation changed it)."""
    data_key.cache_clear()
    previous_keys.cache_clear()


def key_id(key: bytes | None = None) -> str:
    """A public fingerprint of a key, stored next to what it sealed (never the key)."""
    return hashlib.sha256(b"creditstream.key-id|" + (key or data_key())).hexdigest()[:12]


def _aad(context: str) -> bytes:
    return AAD + b"|" + context.encode() if context else AAD


def seal(plaintext: str, context: str = "") -> str:
    """Encrypt ``plaintext`` with the current key, bound to ``context``."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(data_key()).encrypt(nonce, plaintext.encode(), _aad(context))
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(token: str, context: str = "") -> str:
    """Decrypt a sealed value with the current key or a previous one; raise
    :class:`DataKeyError` when none opens it."""
    if not token.startswith(PREFIX):
        raise ValueError("not an encrypted field")
    raw = base64.urlsafe_b64decode(token[len(PREFIX):])
    for key in (data_key(), *previous_keys()):
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], _aad(context)).decode()
        except InvalidTag:
            continue
    raise DataKeyError(
        f"cannot decrypt {context or 'a sealed field'}: it was sealed with a key other than "
        f"{ENV} (key id {key_id()}) and {PREVIOUS_ENV}, or it was altered")


def _lookup_key(key: bytes) -> bytes:
    # A key of its own, so the hash key is not the encryption key (HKDF, RFC 5869).
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"creditstream.lookup.v1").derive(key)


def lookup_hash(value: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 of ``value`` under the lookup key of ``key`` (default: the current
    key): finds rows by a personal identifier without storing or decrypting it."""
    return hmac.new(_lookup_key(key or data_key()), value.encode(), hashlib.sha256).hexdigest()


def lookup_hashes(value: str) -> list[str]:
    """``value``'s lookup hash under the current and every previous key (during a rotation
    rows not yet re-keyed carry an old one)."""
    return [lookup_hash(value, k) for k in (data_key(), *previous_keys())]
