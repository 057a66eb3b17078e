"""Field encryption for secrets and personal data at rest in PostgreSQL (AES-256-GCM).

The key comes from ``CREDITSTREAM_DATA_KEY`` (32 bytes, urlsafe base64). The local stack
has none configured, so it keeps a generated key in ``.state/data.key`` (mode 0600);
production sets the environment variable from its secret store.

Rotation: put the new key in ``CREDITSTREAM_DATA_KEY`` and the old ones, comma-separated,
in ``CREDITSTREAM_DATA_KEY_PREVIOUS``; values sealed with an old key still open, and
``creditstream parties rekey`` re-seals the personal data with the new one (docs/security.md).

Sealed values name the key that sealed them: ``v2:<key id>:<base64url(nonce, ciphertext,
tag)>``. A value that no configured key opens is then reported by the key it needs
(issue 11: a second key generated silently in another state folder made webhook secrets
unreadable, and nothing said which key was missing). ``v1:`` values (no key id) still open
with whichever configured key fits.

A ``context`` (for personal data: the column and the row's id) is bound into each
ciphertext as associated data, so a value cannot be copied to another row or column and
still open. Equality lookups (a tax id) use :func:`lookup_hash`, an HMAC under a key
derived from the data key for that purpose only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connectors.errors import ConnectorError
from schemas import config

log = logging.getLogger(__name__)
ENV = config.DATA_KEY_ENV
PREVIOUS_ENV = config.DATA_KEY_PREVIOUS_ENV
PREFIX = "v1:"      # legacy: no key id
PREFIX_V2 = "v2:"   # v2:<key id>:<payload>
# Binds ciphertexts to this use, so a value cannot be moved to another kind of column.
AAD = b"creditstream.field.v1"


class DataKeyError(ConnectorError, ValueError):
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
    settings = config.load()
    if settings.data_key:
        return _decode(settings.data_key)
    path = settings.state_dir / "data.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        # Never silently: in another state folder this is a second key, and what the first
        # one sealed does not open here. `creditstream keys data-key status` compares.
        log.warning("%s is not set: generated a new data key in %s (key id %s); values sealed "
                    "with any other key will not open", ENV, path, key_id(_decode(path.read_text().strip())))
    return _decode(path.read_text().strip())


@lru_cache(maxsize=1)
def previous_keys() -> tuple[bytes, ...]:
    """Keys being rotated out: they open old values, they never seal new ones."""
    return tuple(_decode(k, PREVIOUS_ENV) for k in config.load().data_keys_previous)


def reload() -> None:
    """Read the keys from the environment again (after a test or a rotation changed it)."""
    data_key.cache_clear()
    previous_keys.cache_clear()


def key_id(key: bytes | None = None) -> str:
    """A public fingerprint of a key, stored next to what it sealed (never the key)."""
    return hashlib.sha256(b"creditstream.key-id|" + (key or data_key())).hexdigest()[:12]


def _aad(context: str) -> bytes:
    return AAD + b"|" + context.encode() if context else AAD


def seal(plaintext: str, context: str = "", key: bytes | None = None) -> str:
    """Encrypt ``plaintext`` with the current key (or ``key``), bound to ``context``,
    naming the key's id."""
    key = key or data_key()
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), _aad(context))
    return f"{PREFIX_V2}{key_id(key)}:" + base64.urlsafe_b64encode(nonce + sealed).decode()


def is_sealed(token: str) -> bool:
    return token.startswith((PREFIX, PREFIX_V2))


def sealed_key_id(token: str) -> str | None:
    """The id of the key that sealed ``token`` (None for a legacy ``v1:`` value)."""
    if token.startswith(PREFIX_V2):
        return token[len(PREFIX_V2):].partition(":")[0]
    return None


def configured() -> dict[str, bytes]:
    """Every configured key by id: the current one first, then the previous ones."""
    return {key_id(k): k for k in (data_key(), *previous_keys())}


def _configured_text() -> str:
    ids = [key_id(k) for k in previous_keys()]
    return f"{ENV} (key id {key_id()}) and {PREVIOUS_ENV} ({', '.join(ids) if ids else 'unset'})"


def unseal(token: str, context: str = "") -> str:
    """Decrypt a sealed value with the key it names (``v2:``), or any configured key
    (``v1:``); raise :class:`DataKeyError` saying which key is needed when none opens it."""
    what = context or "a sealed field"
    if not is_sealed(token):
        raise ValueError("not an encrypted field")
    wanted = sealed_key_id(token)
    body = token[len(PREFIX_V2) + len(wanted) + 1:] if wanted is not None else token[len(PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(body)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"cannot decrypt {what}: the stored value is not base64 (altered?)") from None
    keys = configured()
    if wanted is not None and wanted not in keys:
        raise DataKeyError(f"cannot decrypt {what}: it was sealed with a key other than {_configured_text()}: "
                           f"it needs data key id {wanted}")
    for key in [keys[wanted]] if wanted is not None else keys.values():
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], _aad(context)).decode()
        except (InvalidTag, ValueError):
            continue
    if wanted is not None:
        raise DataKeyError(f"cannot decrypt {what}: key id {wanted} is configured but does not open it: "
                           f"the value was altered or copied from another row or column")
    raise DataKeyError(
        f"cannot decrypt {what}: it was sealed with a key other than "
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
