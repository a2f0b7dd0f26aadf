"""Signed bundles (issue 14, defect 6): serving loads a version only if a trusted key
signed its manifest, every file matches it, and its files are in the registry's store.

Each refusal is an attack that loaded before signing: MLflow's checksum tags could be
rewritten with the files, removed, or set on a version whose source is any local path.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopline.cli import app
from loopline.exceptions import ConfigError
from loopline.registry import Bundle, Keys, Registry, Signature, UntrustedModelError
from loopline.registry.bundle import sha256
from loopline.registry.signing import (
    MANIFEST_TAG,
    SIGNATURES_TAG,
    SIGNING_KEY_ENV,
    TRUSTED_KEYS_ENV,
    Manifest,
    SigningKey,
    create_key,
    signed_tags,
)

SIGNATURE = Signature(task="binary", flavour="onnx-trees", inputs=("a", "b"), meta={"t": 0.5})
BUNDLE = Bundle(SIGNATURE, {"weights.bin": b"\x00\x01"})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """One store for the module (MLflow makes its schema in seconds); a model a test."""
    return Registry(root=tmp_path_factory.mktemp("signing") / "registry")


@pytest.fixture
def m(request: pytest.FixtureRequest) -> str:
    """This test's model name."""
    return re.sub(r"\W+", "-", request.node.name)


def register(registry: Registry, name: str) -> int:
    return registry.register(name, bundle=BUNDLE, metrics={}, params={}, tags={}).version


def refused(registry: Registry, name: str, ref: int | str, reason: str) -> str:
    with pytest.raises(UntrustedModelError) as caught:
        registry.resolve(name, ref)
    assert caught.value.reason == reason, str(caught.value)
    assert (caught.value.model, caught.value.version) == (name, registry.get(name, ref).version)
    return str(caught.value)


def test_a_signed_version_resolves_with_the_checksums_its_signer_signed(
    registry: Registry, m: str, signing_keys: Path
) -> None:
    v = register(registry, m)
    pinned = registry.resolve(m, v)
    assert pinned.key_id == SigningKey.load(signing_keys / "signing.key").key_id
    assert dict(pinned.checksums) == {
        "weights.bin": sha256(b"\x00\x01"),
        "signature.json": sha256(SIGNATURE.to_json()),
    }
    manifest = Manifest.from_json(registry.get(m, v).tags[MANIFEST_TAG].encode())
    assert (manifest.name, manifest.version, manifest.flavour) == (m, v, "onnx-trees")
    assert manifest.files["weights.bin"] == (sha256(b"\x00\x01"), 2)


def test_a_file_changed_with_its_mlflow_checksum_is_refused(registry: Registry, m: str) -> None:
    v = register(registry, m)
    path = registry.get(m, v).path / "weights.bin"
    path.write_bytes(b"evil")
    registry.client.set_model_version_tag(m, str(v), "sha256.weights.bin", sha256(b"evil"))
    message = refused(registry, m, v, "checksum")
    assert "does not match its registered checksum" in message


def test_a_version_without_signature_or_checksums_is_refused(registry: Registry, m: str) -> None:
    v = register(registry, m)
    for tag in registry.get(m, v).tags:
        registry.client.delete_model_version_tag(m, str(v), tag)
    message = refused(registry, m, v, "unsigned")
    assert "--from-files" in message, "the message says how to fix it"


def test_a_version_signed_by_an_untrusted_key_is_refused(
    registry: Registry, m: str, tmp_path: Path, signing_keys: Path
) -> None:
    create_key(tmp_path / "attacker" / "evil.key")
    attacker = Keys(signing=tmp_path / "attacker" / "evil.key", trusted=(signing_keys,))
    v = register(Registry(registry.uri, root=tmp_path / "elsewhere", keys=attacker), m)
    message = refused(registry, m, v, "unknown-key")
    assert TRUSTED_KEYS_ENV in message
    assert str(signing_keys) in message, "it says where it looked for trusted keys"


def test_a_changed_manifest_or_signature_is_refused(registry: Registry, m: str) -> None:
    v = register(registry, m)
    tags = registry.get(m, v).tags
    forged = tags[MANIFEST_TAG].replace(sha256(b"\x00\x01"), sha256(b"evil"))
    assert forged != tags[MANIFEST_TAG]
    registry.client.set_model_version_tag(m, str(v), MANIFEST_TAG, forged)
    refused(registry, m, v, "bad-signature")
    registry.client.set_model_version_tag(m, str(v), MANIFEST_TAG, tags[MANIFEST_TAG])
    assert registry.resolve(m, v).version == v
    (key_id,) = json.loads(tags[SIGNATURES_TAG])
    for garbage in (json.dumps({key_id: "AAAA"}), json.dumps({key_id: "%%"}), "[1]"):
        registry.client.set_model_version_tag(m, str(v), SIGNATURES_TAG, garbage)
        refused(registry, m, v, "bad-signature")


def test_a_signed_manifest_replayed_on_another_version_is_refused(
    registry: Registry, m: str
) -> None:
    first, second = register(registry, m), register(registry, m)
    tags = registry.get(m, first).tags
    for tag in (MANIFEST_TAG, SIGNATURES_TAG):
        registry.client.set_model_version_tag(m, str(second), tag, tags[tag])
    message = refused(registry, m, second, "mismatch")
    assert f"{m}:{first}" in message


@pytest.mark.parametrize("form", ["path", "file-uri", "dot-dot"])
def test_a_source_outside_the_artifact_store_is_refused(
    registry: Registry, m: str, tmp_path: Path, form: str
) -> None:
    """Even with every check else passing: the files match a manifest that a trusted key
    signed for this very version, but MLflow points the version at a local folder."""
    v = registry.get(m, register(registry, m))
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(v.path, elsewhere)
    assert registry.store is not None
    source = {
        "path": str(elsewhere),
        "file-uri": elsewhere.as_uri(),
        "dot-dot": f"{registry.store}/{os.path.relpath(elsewhere, registry.store)}",
    }[form]
    planted = registry.client.create_model_version(m, source=source, run_id=v.run_id)
    files = {f: (elsewhere / f).read_bytes() for f in v.checksums}
    manifest = Manifest.of(m, int(planted.version), SIGNATURE, files)
    for tag, value in signed_tags(manifest, registry.keys.signing_key(), {}).items():
        registry.client.set_model_version_tag(m, planted.version, tag, value)
    message = refused(registry, m, int(planted.version), "location")
    assert "outside the registry's artifact store" in message


def test_a_missing_file_or_one_beside_the_signed_ones_is_refused(
    registry: Registry, m: str
) -> None:
    v = register(registry, m)
    folder = registry.get(m, v).path
    (folder / "extra.onnx").write_bytes(b"slipped in")
    assert "extra.onnx" in refused(registry, m, v, "unlisted-file")
    (folder / "extra.onnx").unlink()
    (folder / "weights.bin").unlink()
    refused(registry, m, v, "missing-file")


def test_a_refusal_is_an_alert_on_the_registry_logger(
    registry: Registry, m: str, caplog: pytest.LogCaptureFixture, signing_keys: Path
) -> None:
    v = register(registry, m)
    registry.client.delete_model_version_tag(m, str(v), SIGNATURES_TAG)
    with caplog.at_level(logging.ERROR, logger="loopline.registry"):
        refused(registry, m, v, "unsigned")
    (record,) = [r for r in caplog.records if r.name == "loopline.registry"]
    assert record.levelno == logging.ERROR
    fields = {k: getattr(record, k) for k in ("event", "model", "version", "reason")}
    assert fields == {"event": "model_refused", "model": m, "version": v, "reason": "unsigned"}
    private = (signing_keys / "signing.key").read_text()
    assert "PRIVATE" not in record.getMessage()
    assert private not in caplog.text


def test_rotation_trusts_both_keys_then_only_the_new_one(tmp_path: Path, m: str) -> None:
    old, new = tmp_path / "keys" / "old.key", tmp_path / "keys" / "new.key"
    create_key(old), create_key(new)
    pub = old.with_suffix(".pub"), new.with_suffix(".pub")
    root = tmp_path / "registry"

    def registry(signing: Path, *trusted: Path) -> Registry:
        return Registry(root=root, keys=Keys(signing=signing, trusted=trusted))

    before = register(registry(old, pub[0]), m)
    window = registry(new, *pub)  # servers trust both; trainers sign with the new key
    during = register(window, m)
    assert window.resolve(m, before).key_id == SigningKey.load(old).key_id
    assert window.resolve(m, during).key_id == SigningKey.load(new).key_id
    after = registry(new, pub[1])  # the old key is no longer trusted
    assert after.resolve(m, during).version == during
    refused(after, m, before, "unknown-key")
    with pytest.raises(UntrustedModelError):
        after.sign(m, before)  # re-signing needs a signature it trusts first
    assert window.sign(m, before) == SigningKey.load(new).key_id
    assert after.resolve(m, before).key_id == SigningKey.load(new).key_id
    assert window.resolve(m, before).version == before, "the old signature stays too"


def test_a_version_no_trusted_key_signed_is_adopted_from_its_files(
    registry: Registry, m: str
) -> None:
    v = register(registry, m)
    for tag in (MANIFEST_TAG, SIGNATURES_TAG):
        registry.client.delete_model_version_tag(m, str(v), tag)
    refused(registry, m, v, "unsigned")
    registry.sign(m, v, from_files=True)
    assert registry.resolve(m, v).version == v
    (registry.get(m, v).path / "weights.bin").write_bytes(b"changed")
    with pytest.raises(UntrustedModelError, match="does not match"):
        registry.sign(m, v, from_files=True)  # the files must match MLflow's checksums


def test_the_embedded_profile_makes_its_key_on_first_registration(
    tmp_path: Path, m: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV)
    monkeypatch.delenv(TRUSTED_KEYS_ENV)
    registry = Registry(root=tmp_path / ".loopline" / "registry")
    key = tmp_path / ".loopline" / "keys" / "signing.key"
    assert registry.keys == Keys(signing=key, trusted=(key.parent,), create=True)
    v = register(registry, m)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert registry.resolve(m, v).key_id == SigningKey.load(key).key_id
    server = Registry("http://127.0.0.1:9", root=tmp_path / "scale" / "registry")
    assert not server.keys.create, "a tracking server's registry needs a key made for it"
    with pytest.raises(ConfigError, match="loopline models keygen"):
        server.keys.signing_key()
    monkeypatch.setenv(SIGNING_KEY_ENV, str(tmp_path / "missing.key"))
    named = Registry(root=tmp_path / "other" / "registry")
    with pytest.raises(ConfigError, match="No signing key"):
        register(named, m)
    assert not (tmp_path / "missing.key").exists(), "a key named by the environment is not made"


def test_a_key_is_private_from_its_first_byte_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.key"
    previous = os.umask(0)  # a careless umask: the mode must come from os.open itself
    try:
        key_id = create_key(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key_id) == 16
    assert key_id == SigningKey.load(path).key_id
    original = path.read_bytes()
    with pytest.raises(FileExistsError):
        create_key(path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in path.parent.iterdir()) == ["signing.key", "signing.pub"]


def test_trusted_keys_inside_the_registry_folder_are_refused(tmp_path: Path) -> None:
    inside = Keys(signing=tmp_path / "k.key", trusted=(tmp_path / "registry" / "keys",))
    with pytest.raises(ConfigError, match="outside"):
        Registry(root=tmp_path / "registry", keys=inside)


def test_credentials_in_the_registry_url_go_to_mlflows_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    registry = Registry("http://alice:s%40cr3t:x@127.0.0.1:5000", root=tmp_path / "registry")
    assert registry.uri == "http://127.0.0.1:5000"
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "s@cr3t:x"
    assert "cr3t" not in repr(vars(registry)) + repr(vars(registry.client))
    assert Registry("http://127.0.0.1:5000", root=tmp_path).uri == "http://127.0.0.1:5000"


def test_keygen_sign_and_verify_commands(
    registry: Registry, m: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    uri = ["--registry", registry.uri]
    v = str(register(registry, m))
    made = runner.invoke(app, ["models", "keygen", "--dir", str(tmp_path / "k"), "--name", "b"])
    assert made.exit_code == 0, made.output
    new_id = SigningKey.load(tmp_path / "k" / "b.key").key_id
    assert new_id in made.output
    again = runner.invoke(app, ["models", "keygen", "--dir", str(tmp_path / "k"), "--name", "b"])
    assert isinstance(again.exception, ConfigError)
    signed = runner.invoke(
        app, ["models", "sign", m, v, "--key", str(tmp_path / "k" / "b.key"), *uri]
    )
    assert signed.output.strip() == f"{m}:{v} signed by key {new_id}"
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(tmp_path / "k" / "b.pub"))  # the new key only
    verified = runner.invoke(app, ["models", "verify", m, v, *uri])
    assert verified.output.strip() == f"{m}:{v}: signed by key {new_id}, 2 files verified"
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(tmp_path / "nowhere"))
    failed = runner.invoke(app, ["models", "verify", m, v, *uri])
    assert isinstance(failed.exception, UntrustedModelError)
    assert failed.exception.reason == "unknown-key"
