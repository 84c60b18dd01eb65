"""Secrets: encrypted at rest, masked wherever shown, and kept when a form sends the mask back.

The secret fields of a config are found by walking the model (``ConfigModel.secret_fields``),
so a new secret field needs only the ``Secret`` type to be encrypted, masked and kept.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from studio.config.base import ConfigModel
from studio.errors import StudioError
from studio.private import private_file

MASK = "••••••"
_SEALED = "enc:v1:"
KEY_FILE = "secret.key"
SALT_FILE = "secret.salt"
_LEGACY_SALT = b"connector-studio/v1"  # every passphrase's salt before secret.salt existed

PathKey = str | int | tuple[str, str]
Slot = tuple[tuple[PathKey, ...], ConfigModel, str]


def secret_slots(model: ConfigModel) -> Iterator[Slot]:
    """Every secret in ``model``, as (path, owning model, field name).

    List items that have a name (headers) are addressed by name, not position, so that a
    masked header keeps its stored value even when the analyst reorders the list.
    """
    for name in model.secret_fields():
        yield (name,), model, name
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, ConfigModel):
            for path, owner, field in secret_slots(value):
                yield (name, *path), owner, field
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ConfigModel):
                    key = ("name", item.name) if hasattr(item, "name") else i
                    for path, owner, field in secret_slots(item):
                        yield (name, key, *path), owner, field


def _owner_at(model: ConfigModel, path: tuple[PathKey, ...]) -> ConfigModel | None:
    node: object = model
    for key in path[:-1]:
        if isinstance(key, tuple):
            node = next((i for i in node if getattr(i, key[0], None) == key[1]), None)
        elif isinstance(key, int):
            node = node[key] if isinstance(node, list) and key < len(node) else None
        else:
            node = getattr(node, key, None)
        if node is None:
            return None
    return node if isinstance(node, ConfigModel) else None


def _map_secrets(model: ConfigModel, fn) -> ConfigModel:
    copy = model.model_copy(deep=True)
    for _path, owner, field in secret_slots(copy):
        value = getattr(owner, field)
        if value:
            object.__setattr__(owner, field, fn(value))
    return copy


def masked(model: ConfigModel) -> ConfigModel:
    """A copy with every non-empty secret replaced by the mask: what any view may show."""
    return _map_secrets(model, lambda _v: MASK)


def keep_masked(new: ConfigModel, old: ConfigModel | None) -> tuple[ConfigModel, list[str]]:
    """Put the stored secret back wherever ``new`` still holds the mask.

    Returns the merged copy and the names of masked fields that had nothing stored to keep
    (a config imported from an export that left its secrets out); the caller refuses those.
    """
    merged = new.model_copy(deep=True)
    missing = []
    for path, owner, field in secret_slots(merged):
        if getattr(owner, field) != MASK:
            continue
        before = _owner_at(old, path) if old is not None else None
        # Same model class only: switching OAuth 2.0 to basic must not carry a password over.
        if before is not None and type(before) is type(owner) and getattr(before, field, ""):
            object.__setattr__(owner, field, getattr(before, field))
        else:
            missing.append(type(owner).model_fields[field].title or field)
    return merged, missing


@functools.lru_cache(maxsize=8)
def _derive(passphrase: str, salt: bytes) -> bytes:
    """A Fernet key from a passphrase: stretched, because people pick short passphrases."""
    kdf = PBKDF2HMAC(hashes.SHA256(), 32, salt, 200_000)
    return base64.urlsafe_b64encode(kdf.derive(passphrase.encode()))


def _salt(home: Path) -> bytes:
    """The salt of the passphrase's key derivation: random per home, in ``secret.salt``.

    A fixed salt lets one precomputed table of passphrases serve every installation; a random
    one makes each home's derivation its own. The salt is not secret, but it is needed to open
    the secrets: a worker on another machine will need this file beside the key.

    A home whose configs were sealed before salts existed (``configs.json`` holds sealed
    secrets, and there is no ``secret.salt``) gets the old fixed salt written into the file
    instead. That keeps one key per home: every secret opens with the key it was sealed with,
    without a second derivation tried on each failure nor secrets to re-seal, and a wrong
    passphrase still fails at once. Such a home keeps the fixed salt until its configs are
    exported and imported into a new home."""
    from studio.config.store import (
        CONFIG_FILE,  # here, not above: studio.config.store imports this module
    )

    configs = home / CONFIG_FILE
    legacy = configs.exists() and _SEALED.encode() in configs.read_bytes()
    salt = _LEGACY_SALT if legacy else os.urandom(16).hex().encode()
    return private_file(home / SALT_FILE, salt).read_bytes()


def load_key(home: Path) -> bytes:
    """``STUDIO_SECRET_KEY`` (a Fernet key, or a passphrase stretched with the home's salt),
    else a key file made on first use (0600, race-free between processes)."""
    env = os.environ.get("STUDIO_SECRET_KEY", "").strip()
    if env:
        try:
            Fernet(env.encode())
            return env.encode()
        except ValueError:
            return _derive(env, _salt(home))
    return private_file(home / KEY_FILE, Fernet.generate_key()).read_bytes().strip()


class Vault:
    """Seals a config for storage and opens it again; only the store holds one."""

    def __init__(self, key: bytes):
        self._fernet = Fernet(key)

    def seal(self, model: ConfigModel) -> dict:
        """The JSON document to store: secrets encrypted, everything else readable."""
        sealed = _map_secrets(model, lambda v: _SEALED + self._fernet.encrypt(v.encode()).decode())
        return sealed.model_dump(mode="json")

    def open(self, model: ConfigModel) -> ConfigModel:
        """Decrypt the secrets of a model validated from a stored document."""

        def decrypt(value: str) -> str:
            if not value.startswith(_SEALED):
                return value
            try:
                return self._fernet.decrypt(value[len(_SEALED) :].encode()).decode()
            except InvalidToken:
                raise StudioError(
                    f"The secrets of {getattr(model, 'name', 'a config')!r} cannot be decrypted: "
                    "STUDIO_SECRET_KEY (or secret.key, or secret.salt) differs from the key they "
                    "were saved with"
                ) from None

        return _map_secrets(model, decrypt)
