"""Typed, versioned event schemas and the codec that checks them.

An event schema is a :class:`Event` subclass: a frozen msgspec struct whose field ``v``
holds its schema version. The wire format is a JSON object.

Evolution rules:

* A reader rejects an event that misses a required field, has a field of the wrong type
  or a field it does not know, with a :class:`~loopline.exceptions.SchemaError` that
  names the field, the value received and the fix.
* Adding an *optional* field (one with a default) is compatible: bump ``v``. Old readers
  accept newer events and ignore the fields they don't know; new readers fill the default
  into older events. An unknown field in an event no newer than the reader is still an
  error: it is a typo or a producer bug, not an evolution.

Example::

    class Payment(Event, kw_only=True):
        v: int = 1
        amount: float

    codec = Codec(Payment)
    codec.decode(b'{"v": 1, "amount": 9.5}')
"""

from __future__ import annotations

import re
from typing import Any, Generic, TypeVar

import msgspec

from loopline.exceptions import SchemaError


class Event(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base class of event schemas; subclasses redefine ``v`` when they evolve."""

    v: int = 1


E = TypeVar("E", bound=Event)

_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_BACKTICKED = re.compile(r"`([^`]+)`")
_STEP = re.compile(r"\.([A-Za-z_][\w]*)|\[(\d+)\]")
_MAX_SHOWN = 80


class Codec(Generic[E]):
    """Encodes events of one schema to JSON bytes and decodes them back, with checks.

    Args:
        schema: The :class:`Event` subclass this codec reads and writes.
    """

    def __init__(self, schema: type[E]) -> None:
        self.schema = schema
        self.version: int = next(f.default for f in msgspec.structs.fields(schema) if f.name == "v")
        self._decoder = msgspec.json.Decoder(schema)
        self._encoder = msgspec.json.Encoder()
        self._fields = frozenset(schema.__struct_fields__)

    def encode(self, event: E) -> bytes:
        """The JSON bytes of ``event``."""
        return self._encoder.encode(event)

    def decode(self, raw: bytes) -> E:
        """Decode and check ``raw``; raise :class:`SchemaError` naming what is wrong."""
        try:
            return self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            return self._decode_newer_or_raise(raw, exc)
        except msgspec.DecodeError as exc:
            raise SchemaError(
                f"{self._name} payload is not valid JSON: {exc}. "
                f"Received: {_shorten(raw)}. Send one JSON object per event.",
                value=raw,
            ) from None

    @property
    def _name(self) -> str:
        return f"Event '{self.schema.__name__}' (v{self.version})"

    def _decode_newer_or_raise(self, raw: bytes, exc: msgspec.ValidationError) -> E:
        obj = msgspec.json.decode(raw)
        newer = isinstance(obj, dict) and isinstance(obj.get("v"), int) and obj["v"] > self.version
        if newer and str(exc).startswith("Object contains unknown field"):
            known = {k: val for k, val in obj.items() if k in self._fields}
            try:
                return msgspec.convert(known, self.schema)
            except msgspec.ValidationError as inner:
                exc = inner
        raise self._error(obj, exc) from None

    def _error(self, obj: Any, exc: msgspec.ValidationError) -> SchemaError:
        text = str(exc)
        match = _PATH.search(text)
        path = match.group("path") if match else ""
        detail = _PATH.sub("", text)
        names = _BACKTICKED.findall(detail)
        if detail.startswith("Object missing required field"):
            field = _join(path, names[0])
            fix = f"add '{field}'; {self.schema.__name__} v{self.version} requires it"
            return SchemaError(f"{self._name} is missing field '{field}': {fix}.", field=field)
        if detail.startswith("Object contains unknown field"):
            field = _join(path, names[0])
            value = _value_at(obj, field)
            fix = (
                f"remove it, or declare it as an optional field in a new schema version "
                f"(v{self.version + 1}) so that readers accept it"
            )
            return SchemaError(
                f"{self._name} has unknown field '{field}' (value {_shorten(value)}): {fix}.",
                field=field,
                value=value,
            )
        field = path.lstrip(".")
        value = _value_at(obj, field) if field else obj
        where = f"field '{field}'" if field else "the event"
        return SchemaError(
            f"{self._name} has an invalid {where}: {detail}. Received {_shorten(value)}. "
            f"Send a value of the declared type.",
            field=field,
            value=value,
        )


def _join(path: str, name: str) -> str:
    return f"{path.lstrip('.')}.{name}" if path else name


def _value_at(obj: Any, dotted: str) -> Any:
    for name, index in _STEP.findall("." + dotted):
        try:
            obj = obj[int(index)] if index else obj[name]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
