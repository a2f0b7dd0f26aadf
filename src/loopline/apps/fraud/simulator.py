"""A card-transaction simulator with fraud scenarios and late labels (a simulator: its
fraud patterns are the ones written here, not observed ones).

The genuine traffic and the first three scenarios follow the design published in the
Fraud Detection Handbook (Le Borgne, Siblini, Lebichot, Bontempi, 2022, ch. 3):

* customers and terminals placed uniformly on a 100 x 100 grid; a customer's mean amount
  ~ U(5, 100) (std half of it) and mean transactions per day ~ U(0, 4); a day's count is
  Poisson, the time of day ~ N(12:00, 20,000 s) kept within the day, the amount
  ~ N(mean, std) (a negative draw is replaced by U(0, 2 x mean)), the terminal drawn
  uniformly from those within radius 5 of the customer;
* ``amount``: every amount over 220 is fraud;
* ``terminal``: each day 2 terminals are compromised for 28 days; all their transactions
  are fraud;
* ``customer``: each day 3 customers' credentials leak for 14 days; a third of their
  transactions (Bernoulli(1/3) here) are fraud with 5 x the amount.

The ``full`` profile adds what a payment processor sees today: card-not-present
e-commerce (a share per customer, at online merchants, from the customer's devices, with
IP-derived locations near home), and three more scenarios:

* ``card_testing``: bursts of 5-20 small card-not-present charges (0.50-5.00) seconds
  apart from a fraudster's device, sometimes followed by one large purchase;
* ``account_takeover``: 2-6 purchases over two days from a new device, far from home, at
  electronics / travel merchants, 3-10 x the customer's usual amount;
* ``merchant_compromise``: every 30 days the 10 terminals around one place are skimmed
  for 7 days; half the cards used there are cashed out online 1-10 days later.

One scenario is in no profile by default; the drift scenario (``loopline scenario
drift``) starts it mid-stream with ``starts``, as a pattern the model has never seen:

* ``card_enumeration``: a botnet tests stolen card details through one compromised online
  checkout a day: one small charge (1.00-15.00) per card, at any hour, without a device
  fingerprint (the checkout sends none), from residential proxies near the cardholder's
  home; ``enumeration_share`` sets its volume against the day's genuine transactions
  (attacks of this kind come in waves that swamp normal traffic).

Labels arrive late, as their own stream: a fraud's chargeback after a delay (7 days in
the handbook profile, as in its experiments; 1 + Gamma(2, 2.5) days in ``full``), and a
genuine transaction's confirmation when its 7-day dispute window closes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from scipy.spatial import cKDTree

from loopline.exceptions import ConfigError
from loopline.units import DAY_MS

START_MS = 1_743_465_600_000  # 2025-04-01 00:00 UTC
SCENARIOS = (
    "genuine",
    "amount",
    "terminal",
    "customer",
    "card_testing",
    "account_takeover",
    "merchant_compromise",
    "card_enumeration",
)
ADDED_SCENARIOS = ("card_testing", "account_takeover", "merchant_compromise", "card_enumeration")
HANDBOOK_SCENARIOS = ("amount", "terminal", "customer")
CATEGORIES = ("grocery", "fuel", "restaurant", "pharmacy", "clothing", "electronics", "travel")
_ONLINE_CATEGORIES = ("clothing", "electronics", "travel", "grocery")
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A simulation setting: scale, scenarios, channels and label delays."""

    name: str
    customers: int = 5_000
    terminals: int = 10_000
    days: int = 183
    radius: float = 5.0
    scenarios: tuple[str, ...] = SCENARIOS[1:7]
    online_merchants: float = 0.2  # share of terminals that are e-commerce (0: none)
    chargeback_days: float | None = None  # fixed delay; None: 1 + Gamma(2, 2.5) days
    dispute_window_days: int = 7
    starts: tuple[tuple[str, int], ...] = ()  # (scenario, first day) for later starts
    enumeration_share: float = 0.3  # card_enumeration per genuine transaction of the day

    def __post_init__(self) -> None:
        for name, _ in self.starts:
            if name not in ADDED_SCENARIOS or name not in self.scenarios:
                raise ConfigError(
                    f"starts: scenario {name!r} cannot start later; choose one of this "
                    f"profile's {[s for s in self.scenarios if s in ADDED_SCENARIOS]}."
                )


PROFILES = {
    "handbook": Profile(
        name="handbook", scenarios=HANDBOOK_SCENARIOS, online_merchants=0.0, chargeback_days=7
    ),
    "full": Profile(name="full"),
}


@dataclass(frozen=True)
class Simulation:
    """The transactions (by event time, with the ground truth) and the label stream (by
    arrival time)."""

    transactions: pa.Table
    labels: pa.Table
    profile: Profile
    seed: int


@dataclass
class _Tx:
    """Columns of generated transactions, before ids and strings."""

    customer: I64
    day: I64
    ms: I64  # within the day
    amount: F64
    terminal: I64
    cnp: npt.NDArray[np.bool_]
    device: I64  # -1: none
    lat: F64
    lon: F64
    scenario: npt.NDArray[np.int8]

    def extend(self, other: _Tx) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))

    def where(self, mask: npt.NDArray[np.bool_]) -> _Tx:
        return _Tx(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})


def profile(
    name: str,
    *,
    customers: int | None = None,
    terminals: int | None = None,
    days: int | None = None,
) -> Profile:
    """A named profile, with scale overrides (``customers``, ``terminals``, ``days``)."""
    if name not in PROFILES:
        raise ConfigError(f"Unknown simulator profile {name!r}; choose one of {sorted(PROFILES)}.")
    base = PROFILES[name]
    scale = {"customers": customers, "terminals": terminals, "days": days}
    for key, value in scale.items():
        if value is not None and value <= 0:
            raise ConfigError(f"Simulator {key}={value}: must be a positive number.")
    return replace(
        base,
        customers=customers or base.customers,
        terminals=terminals or base.terminals,
        days=days or base.days,
    )


def simulate(
    setting: Profile | str = "full", *, seed: int = 0, start_ms: int = START_MS
) -> Simulation:
    """Generate transactions and labels; the same profile and seed give the same tables."""
    p = profile(setting) if isinstance(setting, str) else setting
    rng = np.random.default_rng(seed)
    world = _World.build(p, rng)
    tx = world.genuine(rng)
    world.fraud(tx, rng)
    return _tables(world, tx, rng, seed, start_ms)


@dataclass
class _World:
    p: Profile
    cxy: F64  # customers' home (x, y)
    mean_amount: F64
    tx_per_day: F64
    cnp_share: F64
    txy: F64  # terminals' (x, y)
    online: npt.NDArray[np.bool_]
    category: I64
    near_start: I64  # customer c's nearby physical terminals: near[near_start[c]:near_start[c+1]]
    near: I64
    shops: I64  # (customers, 5) online merchants each customer uses

    @classmethod
    def build(cls, p: Profile, rng: np.random.Generator) -> _World:
        c, t = p.customers, p.terminals
        cxy = rng.uniform(0, 100, (c, 2))
        mean_amount = rng.uniform(5, 100, c)
        tx_per_day = rng.uniform(0, 4, c)
        cnp_share = rng.uniform(0.05, 0.5, c) if p.online_merchants else np.zeros(c)
        txy = rng.uniform(0, 100, (t, 2))
        online = rng.random(t) < p.online_merchants
        category = rng.integers(0, len(CATEGORIES), t)
        physical = np.flatnonzero(~online)
        lists = cKDTree(txy[physical]).query_ball_point(cxy, r=p.radius, return_sorted=True)
        sizes = np.array([len(x) for x in lists], dtype=np.int64)
        near = physical[np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])]
        shops_from = np.flatnonzero(online)
        shops = rng.choice(shops_from, (c, 5)) if len(shops_from) else np.zeros((c, 5), np.int64)
        starts = np.r_[0, np.cumsum(sizes)].astype(np.int64)
        return cls(
            p, cxy, mean_amount, tx_per_day, cnp_share, txy, online, category, starts, near, shops
        )

    def genuine(self, rng: np.random.Generator) -> _Tx:
        p = self.p
        counts = rng.poisson(np.repeat(self.tx_per_day, p.days)).astype(np.int64)
        cust = np.repeat(np.repeat(np.arange(p.customers), p.days), counts)
        day = np.repeat(np.tile(np.arange(p.days), p.customers), counts)
        ms = _times_of_day(rng, len(cust))
        amount = rng.normal(self.mean_amount[cust], self.mean_amount[cust] / 2)
        negative = amount < 0
        amount[negative] = rng.uniform(0, 2 * self.mean_amount[cust[negative]])
        cnp = rng.random(len(cust)) < self.cnp_share[cust]
        n_near = np.diff(self.near_start)[cust]
        keep = cnp | (n_near > 0)  # as in the handbook: no terminal nearby, no transaction
        cust, day, ms, n_near = cust[keep], day[keep], ms[keep], n_near[keep]
        amount, cnp = amount[keep], cnp[keep]
        pick = (rng.random(len(cust)) * np.maximum(n_near, 1)).astype(np.int64)
        terminal = np.where(
            cnp,
            self.shops[cust, rng.integers(0, 5, len(cust))],
            self.near[np.minimum(self.near_start[cust] + pick, len(self.near) - 1)]
            if len(self.near)
            else 0,  # no physical terminal near anyone: every kept transaction is online
        )
        device = np.where(cnp, cust * 2 + (rng.random(len(cust)) < 0.2), -1)
        lat, lon = self._where(terminal, cust, cnp, rng)
        return _Tx(
            cust,
            day,
            ms,
            _cents(amount),
            terminal,
            cnp,
            device,
            lat,
            lon,
            np.zeros(len(cust), dtype=np.int8),
        )

    def _where(
        self, terminal: I64, cust: I64, cnp: npt.NDArray[np.bool_], rng: np.random.Generator
    ) -> tuple[F64, F64]:
        """Latitude and longitude: the terminal's for card-present transactions, the
        customer's IP-derived location (home, give or take) for card-not-present ones."""
        xy = np.where(
            cnp[:, None], self.cxy[cust] + rng.normal(0, 0.3, (len(cust), 2)), self.txy[terminal]
        )
        return _grid_to_lat(xy[:, 1]), _grid_to_lon(xy[:, 0])

    def fraud(self, tx: _Tx, rng: np.random.Generator) -> None:
        p, code = self.p, {name: i for i, name in enumerate(SCENARIOS)}
        if "amount" in p.scenarios:
            tx.scenario[tx.amount > 220] = code["amount"]
        if "terminal" in p.scenarios:
            hit = _compromised(rng, p.terminals, p.days, per_day=2, lasting=28)
            tx.scenario[hit[tx.terminal, tx.day]] = code["terminal"]
        if "customer" in p.scenarios:
            hit = _compromised(rng, p.customers, p.days, per_day=3, lasting=14)
            leaked = hit[tx.customer, tx.day] & (rng.random(len(tx.customer)) < 1 / 3)
            tx.amount[leaked] = np.round(tx.amount[leaked] * 5, 2)
            tx.scenario[leaked] = code["customer"]
        added = []
        if "card_testing" in p.scenarios:
            added.append(self._card_testing(rng, code["card_testing"]))
        if "account_takeover" in p.scenarios:
            added.append(self._takeover(rng, code["account_takeover"]))
        if "merchant_compromise" in p.scenarios:
            added.append(self._cash_out(tx, rng, code["merchant_compromise"]))
        if "card_enumeration" in p.scenarios:
            added.append(self._enumeration(tx, rng, code["card_enumeration"]))
        first = dict(p.starts)
        for more in added:
            start = first.get(SCENARIOS[more.scenario[0]], 0) if len(more.scenario) else 0
            tx.extend(more.where(more.day >= start))

    def _fraud_tx(
        self,
        rng: np.random.Generator,
        cust: I64,
        day: I64,
        ms: I64,
        amount: F64,
        terminal: I64,
        code: int,
    ) -> _Tx:
        """Card-not-present fraud from fraudsters' devices and far-away IP addresses."""
        n = len(cust)
        far = rng.uniform(0, 100, (n, 2))
        return _Tx(
            cust,
            day,
            ms,
            _cents(amount),
            terminal,
            np.ones(n, dtype=bool),
            2 * self.p.customers + rng.integers(0, 50, n),
            _grid_to_lat(far[:, 1] + 150),
            _grid_to_lon(far[:, 0] + 100),
            np.full(n, code, dtype=np.int8),
        )

    def _online_terminals(
        self, rng: np.random.Generator, n: int, categories: tuple[str, ...]
    ) -> I64:
        wanted = [CATEGORIES.index(c) for c in categories]
        pool = np.flatnonzero(self.online & np.isin(self.category, wanted))
        if not len(pool):
            pool = np.arange(self.p.terminals)
        return rng.choice(pool, n)

    def _card_testing(self, rng: np.random.Generator, code: int) -> _Tx:
        p = self.p
        victims = rng.integers(0, p.customers, (p.days, 2))
        bursts = rng.integers(5, 21, victims.shape)
        cust = np.repeat(victims.ravel(), bursts.ravel())
        day = np.repeat(np.repeat(np.arange(p.days), 2), bursts.ravel())
        first = np.repeat(rng.integers(0, DAY_MS - 3_600_000, victims.size), bursts.ravel())
        step = rng.exponential(20_000, len(cust)).astype(np.int64)
        burst_id = np.repeat(np.arange(victims.size), bursts.ravel())
        offset = np.cumsum(step) - np.repeat(
            np.cumsum(step)[np.r_[0, np.cumsum(bursts.ravel())[:-1]]], bursts.ravel()
        )
        terminal = self._online_terminals(rng, victims.size, _ONLINE_CATEGORIES)[burst_id]
        small = self._fraud_tx(
            rng, cust, day, first + offset, rng.uniform(0.5, 5.0, len(cust)), terminal, code
        )
        big = rng.random(victims.size) < 0.5
        ends = np.cumsum(bursts.ravel())[big] - 1
        cash = self._fraud_tx(
            rng,
            cust[ends],
            day[ends],
            np.minimum(
                first[ends] + offset[ends] + rng.integers(300_000, 3_600_000, len(ends)), DAY_MS - 1
            ),
            rng.uniform(200, 1500, len(ends)),
            self._online_terminals(rng, len(ends), ("electronics",)),
            code,
        )
        small.extend(cash)
        return small

    def _takeover(self, rng: np.random.Generator, code: int) -> _Tx:
        p = self.p
        victims = rng.integers(0, p.customers, p.days)
        counts = rng.integers(2, 7, p.days)
        cust = np.repeat(victims, counts)
        day = np.minimum(
            np.repeat(np.arange(p.days), counts) + rng.integers(0, 2, len(cust)), p.days - 1
        )
        amount = self.mean_amount[cust] * rng.uniform(3, 10, len(cust))
        terminal = self._online_terminals(rng, len(cust), ("electronics", "travel"))
        return self._fraud_tx(rng, cust, day, _times_of_day(rng, len(cust)), amount, terminal, code)

    def _cash_out(self, tx: _Tx, rng: np.random.Generator, code: int) -> _Tx:
        p = self.p
        physical = np.flatnonzero(~self.online)
        tree = cKDTree(self.txy[physical])
        cust_l, day_l = [], []
        for start in range(10, p.days, 30):
            centre = self.txy[rng.choice(physical)]
            skimmed = physical[tree.query(centre, k=min(10, len(physical)))[1]]
            used = (
                np.isin(tx.terminal, skimmed) & (tx.day >= start) & (tx.day < start + 7) & ~tx.cnp
            )
            cards = np.unique(tx.customer[used])
            cards = cards[rng.random(len(cards)) < 0.5]
            times = rng.integers(1, 4, len(cards))
            cust_l.append(np.repeat(cards, times))
            day_l.append(start + 7 + rng.integers(1, 11, int(times.sum())))
        cust = np.concatenate(cust_l) if cust_l else np.zeros(0, np.int64)
        day = np.concatenate(day_l) if day_l else np.zeros(0, np.int64)
        cust, day = cust[day < p.days], day[day < p.days]
        terminal = self._online_terminals(rng, len(cust), ("electronics", "clothing"))
        amount = rng.uniform(100, 800, len(cust))
        return self._fraud_tx(rng, cust, day, _times_of_day(rng, len(cust)), amount, terminal, code)

    def _enumeration(self, tx: _Tx, rng: np.random.Generator, code: int) -> _Tx:
        p = self.p
        per_day = np.bincount(tx.day[tx.scenario == 0], minlength=p.days)
        counts = rng.poisson(per_day * p.enumeration_share)
        day = np.repeat(np.arange(p.days), counts)
        cust = rng.integers(0, p.customers, len(day))
        checkout = self._online_terminals(rng, p.days, _ONLINE_CATEGORIES)[day]
        home = self.cxy[cust] + rng.normal(0, 0.3, (len(day), 2))
        return _Tx(
            cust,
            day,
            rng.integers(0, DAY_MS, len(day)),
            np.round(rng.uniform(1.0, 15.0, len(day)), 2),
            checkout,
            np.ones(len(day), dtype=bool),
            np.full(len(day), -1),
            _grid_to_lat(home[:, 1]),
            _grid_to_lon(home[:, 0]),
            np.full(len(day), code, dtype=np.int8),
        )


def _cents(amount: F64) -> F64:
    """Rounded to the cent, at least one cent: a payment of 0 is refused by the service."""
    return np.maximum(np.round(amount, 2), 0.01)


def _grid_to_lat(y: F64) -> F64:
    return 45.0 + y * 0.05  # the grid spans 5 degrees of latitude (~555 km)


def _grid_to_lon(x: F64) -> F64:
    return 2.0 + x * 0.07  # and 7 degrees of longitude (~550 km at 45 N)


def _times_of_day(rng: np.random.Generator, n: int) -> I64:
    """Milliseconds into the day ~ N(12:00, 20,000 s), redrawn until inside the day."""
    ms = rng.normal(DAY_MS / 2, 20_000_000, n)
    bad = (ms < 0) | (ms >= DAY_MS)
    while bad.any():
        ms[bad] = rng.normal(DAY_MS / 2, 20_000_000, int(bad.sum()))
        bad = (ms < 0) | (ms >= DAY_MS)
    return ms.astype(np.int64)


def _compromised(
    rng: np.random.Generator, n: int, days: int, *, per_day: int, lasting: int
) -> npt.NDArray[np.bool_]:
    """(n, days): whether each one is compromised on each day."""
    hit = np.zeros((n, days + lasting), dtype=bool)
    picks = rng.integers(0, n, (days, per_day))
    for d in range(days):
        hit[picks[d], d : d + lasting] = True
    return hit[:, :days]


def _tokens(prefix: str, n: int, seed: int) -> pa.Array:
    """Opaque stable ids: keyed BLAKE2b of the index (the card token stands in for what the
    edge derives from a card number; no card number exists here)."""
    key = f"loopline-sim-{seed}".encode()
    digest = (hashlib.blake2b(i.to_bytes(8, "little"), key=key, digest_size=8) for i in range(n))
    return pa.array([prefix + d.hexdigest() for d in digest])


def _numbered(prefix: str, idx: I64, width: int) -> pa.Array:
    """``prefix`` + ``idx`` zero-padded to ``width`` digits (Arrow kernels, vectorised)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(idx), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _pick(choices: tuple[str, ...] | list[str], idx: npt.NDArray[np.integer]) -> pa.Array:
    """``choices[idx]`` as an Arrow string array."""
    return pa.array(list(choices)).take(pa.array(idx))


def _tables(
    world: _World, tx: _Tx, rng: np.random.Generator, seed: int, start_ms: int
) -> Simulation:
    p = world.p
    ts = start_ms + tx.day * DAY_MS + tx.ms
    order = np.lexsort((tx.customer, ts))
    ts = ts[order]
    cust = tx.customer[order]
    terminal = tx.terminal[order]
    cnp = tx.cnp[order]
    scenario = tx.scenario[order]
    device = tx.device[order]
    fraud = scenario > 0
    cards = _tokens("tok_", p.customers, seed)
    devices = _numbered("dev-", np.maximum(device, 0), 7)
    foreign = cnp & (rng.random(len(ts)) < 0.03)
    transactions = pa.table(
        {
            "transaction_id": (tx_ids := _numbered("tx", np.arange(len(ts)), 10)),
            "event_time_ms": pa.array(ts, pa.int64()),
            "card_token": cards.take(pa.array(cust)),
            "customer_id": _numbered("cust-", np.arange(p.customers), 7).take(pa.array(cust)),
            "terminal_id": _numbered("term-", np.arange(p.terminals), 7).take(pa.array(terminal)),
            "merchant_category": _pick(CATEGORIES, world.category[terminal]),
            "amount": pa.array(tx.amount[order]),
            "currency": _pick(("EUR", "USD"), foreign.astype(np.int8)),
            "channel": _pick(("cp", "cnp"), cnp.astype(np.int8)),
            "device_id": pc.if_else(pa.array(device < 0), pa.scalar(None, pa.string()), devices),
            "latitude": pa.array(np.round(tx.lat[order], 5)),
            "longitude": pa.array(np.round(tx.lon[order], 5)),
            "is_fraud": pa.array(fraud.astype(np.int8)),
            "scenario": _pick(SCENARIOS, scenario),
        }
    )
    if p.chargeback_days is not None:
        delay = np.full(len(ts), p.chargeback_days * DAY_MS, dtype=np.float64)
    else:
        delay = (1 + rng.gamma(2.0, 2.5, len(ts))) * DAY_MS
    delay = np.where(fraud, delay, p.dispute_window_days * DAY_MS).astype(np.int64)
    arrival = ts + delay
    by_arrival = np.argsort(arrival, kind="stable")
    labels = pa.table(
        {
            "transaction_id": tx_ids.take(pa.array(by_arrival)),
            "label_time_ms": pa.array(arrival[by_arrival]),
            "event_time_ms": pa.array(ts[by_arrival]),
            "card_token": transactions["card_token"].take(pa.array(by_arrival)),
            "terminal_id": transactions["terminal_id"].take(pa.array(by_arrival)),
            "is_fraud": pa.array(fraud[by_arrival].astype(np.float64)),
            # whose: so that a customer's labels are encrypted under their key on an
            # event log that cannot delete (apps/fraud/erasure.py)
            "customer_id": transactions["customer_id"].take(pa.array(by_arrival)),
        }
    )
    return Simulation(transactions, labels, p, seed)
