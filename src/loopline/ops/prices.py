"""Prices the planner costs a plan at: a default table with its date and source,
overridable field by field by a TOML file.

The default table (``prices.toml`` beside this module) holds public on-demand list prices
(AWS us-east-1, Linux), each with the page it was copied from; they were not fetched live.
Override any of them::

    prices = load_prices(Path("my-prices.toml"))  # only the fields it names change

where ``my-prices.toml`` may hold, for example, ``core_hour = 0.05`` and a ``[gpu_hour]``
table (``h100 = 2.5``); the GPU table is merged key by key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from loopline.exceptions import ConfigError

DEFAULT = Path(__file__).with_name("prices.toml")


@dataclass(frozen=True, kw_only=True, slots=True)
class Prices:
    """Unit prices in US dollars (see ``prices.toml`` for each one's source).

    Attributes:
        core_hour: One vCPU for an hour.
        memory_gib_hour: One GiB of memory for an hour.
        storage_gib_month: One GiB of block storage (disks, databases) for a month.
        object_gib_month: One GiB of object storage (artifacts, archives) for a month.
        egress_gib: One GiB sent to the internet.
        inter_region_gib: One GiB sent between regions (replication).
        gpu_hour: One GPU for an hour, by the names of :data:`loopline.llm.plan.GPUS`.
        spot_discount: The share of the on-demand price spot capacity saves (0.5: half).
        hours_month: Hours billed in a month.
        hosted_model: The hosted LLM API the hosted prices are for.
        hosted_input_per_mtok: Its price per million input (prompt) tokens.
        hosted_output_per_mtok: Its price per million output (generated) tokens.
        date: When the prices were published.
        source: Where they come from.
    """

    core_hour: float
    memory_gib_hour: float
    storage_gib_month: float
    object_gib_month: float
    egress_gib: float
    inter_region_gib: float = 0.0
    gpu_hour: dict[str, float] = field(default_factory=dict)
    spot_discount: float = 0.0
    hours_month: float = 730.0
    hosted_model: str = ""
    hosted_input_per_mtok: float = 0.0
    hosted_output_per_mtok: float = 0.0
    date: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"The price {f.name!r} must be >= 0. Got {value}.")
        if not 0 <= self.spot_discount < 1:
            raise ConfigError(f"spot_discount must be in [0, 1). Got {self.spot_discount}.")
        if self.hours_month <= 0:
            raise ConfigError(f"hours_month must be > 0. Got {self.hours_month}.")

    def gpu(self, name: str) -> float:
        """The price of one GPU ``name`` for an hour: this table's, else the assumed price
        of the training planner's GPU table."""
        if name in self.gpu_hour:
            return self.gpu_hour[name]
        from loopline.llm.plan import GPUS

        if name not in GPUS:
            known = sorted({*self.gpu_hour, *GPUS})
            raise ConfigError(f"No price for GPU {name!r}; known: {', '.join(known)}.")
        return GPUS[name].price_per_hour

    def to_dict(self) -> dict[str, Any]:
        """The table as a JSON-able record."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"--prices: no file {path}.") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"--prices: {path} is not valid TOML ({e}).") from e


def _coerce(name: str, value: Any, kind: Any) -> Any:
    if name == "gpu_hour":
        if not isinstance(value, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
        ):
            raise ConfigError(f"[gpu_hour] must map GPU names to prices. Got {value!r}.")
        return {str(k): float(v) for k, v in value.items()}
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"The price field {name!r} must be a string. Got {value!r}.")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"The price field {name!r} must be a number. Got {value!r}.")
    return float(value)


def load_prices(path: Path | None = None) -> Prices:
    """The default price table, with the fields of TOML file ``path`` (if given) in place
    of the defaults; ``[gpu_hour]`` is merged by GPU name.

    Raises:
        ConfigError: the file is missing or not TOML, names an unknown field, or gives a
            field a value of the wrong kind.
    """
    table = _read(DEFAULT)
    if path is not None:
        override = _read(path)
        known = {f.name for f in fields(Prices)}
        unknown = sorted(set(override) - known)
        if unknown:
            raise ConfigError(
                f"--prices: {path} names unknown fields {unknown}; known: {sorted(known)}."
            )
        gpus = {**table.get("gpu_hour", {}), **override.pop("gpu_hour", {})}
        table = {**table, **override, "gpu_hour": gpus}
    kinds = {f.name: f.type for f in fields(Prices)}
    values = {k: _coerce(k, v, kinds[k]) for k, v in table.items() if k in kinds}
    return Prices(**values)
