"""Sealing personal data: bound to its row and column, rotated keys, clear errors."""

from __future__ import annotations

import base64
import secrets

import pytest

from connectors.pg import crypto


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch):
    """Set the data key (and previous keys) in the environment for one test."""
    def use(current: str, *previous: str) -> None:
        monkeypatch.setenv(crypto.ENV, current)
        monkeypatch.setenv(crypto.PREVIOUS_ENV, ",".join(previous))
        crypto.reload()
    yield use
    monkeypatch.undo()
    crypto.reload()


def test_a_value_opens_only_in_its_own_row_and_column(keys) -> None:
    keys(new_key())
    token = crypto.seal("Zhang Wei", "parties.name|p1")
    assert "Zhang" not in token and crypto.unseal(token, "parties.name|p1") == "Zhang Wei"
    for other in ("parties.name|p2", "parties.tax_id|p1", ""):
        with pytest.raises(crypto.DataKeyError):
            crypto.unseal(token, other)


def test_rotation_old_values_open_with_the_previous_key_and_lookups_find_them(keys) -> None:
    old, new = new_key(), new_key()
    keys(old)
    token, old_hash, old_id = crypto.seal("91310115MA1K4ABC2X", "c"), crypto.lookup_hash("91310115MA1K4ABC2X"), crypto.key_id()
    keys(new, old)
    assert crypto.unseal(token, "c") == "91310115MA1K4ABC2X"
    assert crypto.key_id() != old_id and crypto.lookup_hash("91310115MA1K4ABC2X") != old_hash
    assert old_hash in crypto.lookup_hashes("91310115MA1K4ABC2X")
    keys(new)  # the old key retired before the rows were re-sealed
    with pytest.raises(crypto.DataKeyError, match=f"sealed with a key other than {crypto.ENV} "
                       f"\\(key id {crypto.key_id()}\\)"):
        crypto.unseal(token, "c")


def test_key_ids_and_lookup_hashes_do_not_reveal_the_key_or_the_value(keys) -> None:
    key = new_key()
    keys(key)
    assert crypto.key_id() not in key and len(crypto.key_id()) == 12
    h = crypto.lookup_hash("91310115MA1K4ABC2X")
    assert len(h) == 64 and "9131" not in h and h == crypto.lookup_hash("91310115MA1K4ABC2X")


@pytest.mark.parametrize("bad", ["short", "!!not base64!!", base64.urlsafe_b64encode(b"x" * 31).decode()])
def test_a_malformed_key_in_the_environment_is_a_clear_error(keys, bad: str) -> None:
    keys(bad)
    with pytest.raises(crypto.DataKeyError, match=crypto.ENV):
        crypto.seal("x")


def test_a_sealed_value_names_its_key_and_a_missing_key_is_named(keys) -> None:
    old, new = new_key(), new_key()
    keys(old)
    token, old_id = crypto.seal("whsec_x", "c"), crypto.key_id()
    assert token.startswith(f"v2:{old_id}:") and crypto.sealed_key_id(token) == old_id
    keys(new)
    with pytest.raises(crypto.DataKeyError, match=f"it needs data key id {old_id}"):
        crypto.unseal(token, "c")
    keys(new, old)
    assert crypto.unseal(token, "c") == "whsec_x"
    altered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    with pytest.raises(crypto.DataKeyError, match="altered"):
        crypto.unseal(altered, "c")
    for garbage in ("!!!", "A", ""):  # a clear DataKeyError, never binascii's or an IndexError
        with pytest.raises(crypto.DataKeyError):
            crypto.unseal(f"v2:{old_id}:{garbage}", "c")


def test_values_sealed_before_key_ids_still_open(keys) -> None:
    import secrets

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = new_key()
    keys(key)
    nonce = secrets.token_bytes(12)  # the v1 layout: no key id
    legacy = "v1:" + base64.urlsafe_b64encode(
        nonce + AESGCM(crypto.data_key()).encrypt(nonce, b"whsec_old", crypto._aad("c"))).decode()  # noqa: SLF001
    assert crypto.sealed_key_id(legacy) is None and crypto.unseal(legacy, "c") == "whsec_old"
