"""Ed25519 signatures over a version's files: who may publish a model that serving loads.

MLflow records where a version's files are and what they hash to, but whoever can write
to MLflow can rewrite both. Trust comes from elsewhere: registration signs a
:class:`Manifest` (the version's name and number, its task and flavour, every file's
path, SHA-256 and size) with a private key kept outside the registry, and
:meth:`~loopline.registry.Registry.resolve` loads a version only if a public key this
process trusts signed its manifest and every file matches it. Several keys may be
trusted at once, so a key is rotated without refusing what the old one signed
(docs/registry.md, "Signed bundles").

Key files are PEM: ``NAME.key`` (PKCS#8, created with mode 0600) and ``NAME.pub``.
A key's id is the first 16 hex digits of the SHA-256 of its raw public key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from loopline.exceptions import ConfigError
from loopline.files import write_private
from loopline.registry.bundle import Signature, UntrustedModelError, sha256, untrusted

SIGNING_KEY_ENV = "LOOPLINE_SIGNING_KEY"  # the private key registration signs with
TRUSTED_KEYS_ENV = "LOOPLINE_TRUSTED_KEYS"  # .pub files or folders, os.pathsep-separated
MANIFEST_TAG = "loopline.manifest"  # the signed bytes, as registered
SIGNATURES_TAG = "loopline.signatures"  # {key id: base64 signature}
# Signed bytes start with this, so a signature over a manifest means nothing elsewhere.
DOMAIN = b"loopline model manifest v1\n"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def create_key(path: Path) -> str:
    """Make a key pair, the private key at ``path`` and the public one beside it
    (``.pub``); return the key's id.

    The private key is never readable by others, not even briefly: its file is created
    with mode 0600 under a temporary name and linked into place, which also refuses
    to overwrite a key already there (:class:`FileExistsError`).
    """
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, pem, overwrite=False)  # a key is never overwritten
    public = private.public_key()
    pub = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_private(path.with_suffix(".pub"), pub, mode=0o644)  # public: readable by all
    return key_id(public)


@dataclass(frozen=True)
class SigningKey:
    """A private key loaded to sign manifests."""

    key_id: str
    private: Ed25519PrivateKey

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise ConfigError(f"{path} is not a PEM private key: {exc}.") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigError(f"{path} is not an ed25519 key; make one: `loopline models keygen`.")
        return cls(key_id(private.public_key()), private)

    def sign(self, manifest: bytes, *, domain: bytes = DOMAIN) -> str:
        """The base64 signature of ``domain + manifest``: each kind of signed document
        has its own domain, so a signature of one is never valid as another."""
        return base64.b64encode(self.private.sign(domain + manifest)).decode()


@dataclass(frozen=True, kw_only=True, slots=True)
class Keys:
    """Where this process finds its signing key and the public keys it trusts.

    Args:
        signing: The private key registration signs with.
        trusted: Public keys (``.pub`` files, or folders whose ``*.pub`` are all
            trusted) whose signatures serving accepts; read on every resolve, so
            adding or removing a file takes effect without a restart.
        create: Make the signing key pair when ``signing`` does not exist (the
            embedded profile, so a first run needs no setup).
    """

    signing: Path
    trusted: tuple[Path, ...]
    create: bool = False

    def __post_init__(self) -> None:
        if not self.trusted:
            raise ConfigError("Keys need at least one trusted public key (file or folder).")

    @classmethod
    def from_env(cls, folder: Path, *, create: bool = False) -> Keys:
        """``$LOOPLINE_SIGNING_KEY`` and ``$LOOPLINE_TRUSTED_KEYS``, else
        ``folder/signing.key`` and ``folder``'s public keys. A key named in the
        environment is never created: a missing one is a configuration error."""
        signing = os.environ.get(SIGNING_KEY_ENV)
        trusted = [Path(p) for p in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep) if p]
        return cls(
            signing=Path(signing) if signing else folder / "signing.key",
            trusted=tuple(trusted) or (folder,),
            create=create and not signing,
        )

    def signing_key(self) -> SigningKey:
        """The signing key; created first if allowed and absent."""
        if not self.signing.exists() and self.create:
            with contextlib.suppress(FileExistsError):  # another process made it first
                create_key(self.signing)
        if not self.signing.exists():
            raise ConfigError(
                f"No signing key at {self.signing} (${SIGNING_KEY_ENV} or the registry's "
                f"keys folder). Make one with `loopline models keygen --dir "
                f"{self.signing.parent}` and add its .pub to serving's trusted keys."
            )
        return SigningKey.load(self.signing)

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Key id -> public key, of every trusted key that exists now."""
        files = [
            f
            for p in self.trusted
            for f in (sorted(p.glob("*.pub")) if p.is_dir() else [p] if p.is_file() else [])
        ]
        found = {}
        for file in files:
            try:
                public = serialization.load_pem_public_key(file.read_bytes())
            except ValueError as exc:
                raise ConfigError(f"Trusted key {file} is not a PEM public key: {exc}.") from None
            if not isinstance(public, Ed25519PublicKey):
                raise ConfigError(f"Trusted key {file} is not an ed25519 public key.")
            found[key_id(public)] = public
        return found


@dataclass(frozen=True, kw_only=True, slots=True)
class Manifest:
    """What a signature covers: a version's identity and every file's digest and size.

    The name and number are signed too, so a signed manifest cannot be replayed as
    another model or another version of the same one.
    """

    name: str
    version: int
    task: str
    flavour: str
    files: Mapping[str, tuple[str, int]]  # relative path -> (SHA-256, size in bytes)

    @classmethod
    def of(
        cls, name: str, version: int, signature: Signature, files: Mapping[str, bytes]
    ) -> Manifest:
        return cls(
            name=name, version=version, task=signature.task, flavour=signature.flavour,
            files={f: (sha256(data), len(data)) for f, data in files.items()},
        )  # fmt: skip

    @property
    def checksums(self) -> dict[str, str]:
        return {f: digest for f, (digest, _) in self.files.items()}

    def to_json(self) -> bytes:
        """Canonical JSON: sorted keys, no spaces, ASCII; the bytes that are signed."""
        body = {
            "format": 1,
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "flavour": self.flavour,
            "files": {f: {"sha256": d, "size": n} for f, (d, n) in self.files.items()},
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        files = {f: (str(e["sha256"]), int(e["size"])) for f, e in raw["files"].items()}
        return cls(
            name=raw["name"], version=int(raw["version"]), task=raw["task"],
            flavour=raw["flavour"], files=files,
        )  # fmt: skip


def signed_tags(manifest: Manifest, key: SigningKey, tags: Mapping[str, str]) -> dict[str, str]:
    """The tags that record ``key``'s signature of ``manifest``, given a version's
    ``tags``: other keys' signatures of the same manifest stay (a rotation's window),
    those of another manifest go."""
    signed = manifest.to_json()
    same = tags.get(MANIFEST_TAG) == signed.decode()
    signatures = json.loads(tags.get(SIGNATURES_TAG, "{}")) if same else {}
    signatures[key.key_id] = key.sign(signed)
    return {MANIFEST_TAG: signed.decode(), SIGNATURES_TAG: json.dumps(signatures, sort_keys=True)}


def verify(tags: Mapping[str, str], keys: Keys, *, name: str, version: int) -> tuple[Manifest, str]:
    """The manifest recorded with ``name`` version ``version`` and the id of the trusted
    key that signed it; refused unless one did, and it names this very version."""
    label = f"{name}:{version}"
    signed, recorded = tags.get(MANIFEST_TAG), tags.get(SIGNATURES_TAG)
    if signed is None or recorded is None:
        raise untrusted(
            "unsigned", f"{label} is not signed: it has no {MANIFEST_TAG} and "
            f"{SIGNATURES_TAG} tags. Register it again, or vouch for its files with "
            f"`loopline models sign {name} {version} --from-files`.", name, version,
        )  # fmt: skip
    signatures = _signatures(recorded, label, name, version)
    trusted = keys.public_keys()
    known = [k for k in signatures if k in trusted]
    if not known:
        raise untrusted(
            "unknown-key", f"{label} is signed by key {sorted(signatures)}, which this "
            f"process does not trust (trusted: {sorted(trusted) or 'none'}, from "
            f"{', '.join(map(str, keys.trusted))}). Add the signer's .pub to "
            f"${TRUSTED_KEYS_ENV}, or re-sign it with a trusted key: "
            f"`loopline models sign {name} {version}`.", name, version,
        )  # fmt: skip
    kid = signed_by(signed.encode(), signatures, trusted)
    if kid is not None:
        manifest = Manifest.from_json(signed.encode())
        if (manifest.name, manifest.version) != (name, version):
            raise untrusted(
                "mismatch", f"{label} carries the signed manifest of "
                f"{manifest.name}:{manifest.version}: a signed version replayed under "
                "another name or number. Register the model again.", name, version, kid,
            )  # fmt: skip
        return manifest, kid
    raise untrusted(
        "bad-signature", f"{label}'s signature by key {known} does not match its "
        "manifest: the manifest or the signature was changed after signing. Register "
        "the model again.", name, version,
    )  # fmt: skip


def signed_by(
    signed: bytes,
    signatures: Mapping[str, str],
    trusted: Mapping[str, Ed25519PublicKey],
    *,
    domain: bytes = DOMAIN,
) -> str | None:
    """The id of a ``trusted`` key whose signature of ``domain + signed`` is among
    ``signatures`` (key id -> base64) and valid; None when none is (no trusted signer,
    or only signatures that do not match)."""
    for kid in (k for k in signatures if k in trusted):
        try:
            trusted[kid].verify(base64.b64decode(signatures[kid]), domain + signed)
        except (InvalidSignature, ValueError):  # binascii.Error, or a non-ASCII str
            continue
        return kid
    return None


def _signatures(recorded: str, label: str, name: str, version: int) -> dict[str, str]:
    try:
        signatures = json.loads(recorded)
    except ValueError:
        signatures = None
    if not isinstance(signatures, dict) or not all(isinstance(v, str) for v in signatures.values()):
        raise untrusted(
            "bad-signature", f"{label}'s {SIGNATURES_TAG} tag is not a JSON object of "
            "key id to signature. Register the model again.", name, version,
        )  # fmt: skip
    return signatures


__all__ = [
    "Keys", "Manifest", "SigningKey", "UntrustedModelError", "create_key", "key_id", "signed_by",
    "signed_tags", "verify",
]  # fmt: skip
