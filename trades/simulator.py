"""A deterministic front office: executed-trade messages in the inbound contract (pure).

``TradeSimulator`` turns plain reference lists and a seed into an endless stream of
``SimulatedMessage(key, value, kind)``: NEW executions on a random-walk price, AMENDs and CANCELs
of earlier live trades of the same run, and, at configurable shares, MALFORMED messages (bytes
that are not JSON, or JSON that breaks ``schemas/trades.executed/v1.json``) and INVALID ones
(schema-valid but naming an unknown instrument or account). The same seed and inputs give the same
bytes, message for message, on every machine: prices are walked in whole ticks, quantities are
integers, and every random draw comes from one seeded ``random.Random``.

No Django and no I/O here; ``manage.py produce_trades`` feeds it reference data and sends it on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from backoffice.money import quantize_money
from trades.calendar import MarketCalendar

ISIN_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Consolidated-tape venues per market of listing; repeats weight the primary venue.
DEFAULT_VENUES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "XNYS": ("XNYS", "XNYS", "XNYS", "ARCX", "BATS", "EDGX", "IEXG", "XNAS"),
        "XNAS": ("XNAS", "XNAS", "XNAS", "BATS", "EDGX", "IEXG", "ARCX"),
        "ARCX": ("ARCX", "ARCX", "ARCX", "XNYS", "BATS", "XNAS"),
        "XETR": ("XETR", "XETR", "XETR", "CEUX", "TRQX", "AQXE"),
        "XPAR": ("XPAR", "XPAR", "XPAR", "CEUX", "TRQX", "AQXE"),
    }
)
DEFAULT_TRADERS = ("jdoe", "asmith", "mchen", "lgarcia", "kmueller", "sdubois", "rpatel", "tsato")
# Bonds trade in units of 100 nominal (price in percent of par), so consideration is always
# quantity x price; these are 10k to 1m nominal.
BOND_UNITS = (100, 200, 250, 500, 1000, 2000, 5000, 10000)
FEE_RATE = Decimal("0.0001")  # 1 bp commission on the trades that carry fees
REQUIRED_FIELDS = (
    "trade_id",
    "trade_version",
    "action",
    "account",
    "counterparty",
    "instrument",
    "side",
    "quantity",
    "price",
    "currency",
    "trade_date",
    "trade_time",
    "venue",
    "trader",
)

Payload = dict[str, Any]


def isin_check_digit(body: str) -> str:
    """The ISO 6166 check digit of an 11-character ISIN body (Luhn over the digit expansion)."""
    if len(body) != 11 or any(c not in ISIN_ALPHABET for c in body):
        raise ValueError(f"an ISIN body is 11 characters of A-Z and 0-9, got {body!r}")
    digits = "".join(str(ISIN_ALPHABET.index(c)) for c in body)
    total = 0
    for position, char in enumerate(reversed(digits)):
        d = int(char) * (2 if position % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def isin_is_valid(isin: str) -> bool:
    """True when ``isin`` is two letters, nine alphanumerics and the right check digit."""
    if len(isin) != 12 or not isin[:2].isalpha() or not isin[:2].isupper():
        return False
    try:
        return isin_check_digit(isin[:11]) == isin[11]
    except ValueError:
        return False


class TradeKind(StrEnum):
    NEW = "NEW"
    AMEND = "AMEND"
    CANCEL = "CANCEL"
    MALFORMED = "MALFORMED"
    INVALID = "INVALID"


class SimulatedMessage(NamedTuple):
    key: str  # the account code (Kafka key)
    value: bytes
    kind: TradeKind


class PricedInstrument(Protocol):
    @property
    def isin(self) -> str: ...
    @property
    def tick_size(self) -> Decimal: ...
    @property
    def reference_price(self) -> Decimal: ...


@dataclass(frozen=True)
class SimInstrument:
    isin: str
    currency: str
    market: str  # MIC of the market of listing
    tick_size: Decimal
    reference_price: Decimal
    asset_class: str = "EQUITY"


@dataclass(frozen=True)
class SimCounterparty:
    code: str
    markets: frozenset[str]  # MICs it has settlement instructions for


@dataclass(frozen=True)
class SimReference:
    """The plain reference lists a simulation draws from."""

    instruments: tuple[SimInstrument, ...]
    accounts: tuple[str, ...]
    counterparties: tuple[SimCounterparty, ...]
    traders: tuple[str, ...] = DEFAULT_TRADERS
    venues: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_VENUES)
    calendars: Mapping[str, MarketCalendar] = field(default_factory=dict)  # by MIC

    def __post_init__(self) -> None:
        if not self.instruments or not self.accounts or not self.traders:
            raise ValueError("a simulation needs instruments, accounts and traders")
        for instrument in self.instruments:
            if not any(instrument.market in c.markets for c in self.counterparties):
                raise ValueError(f"no counterparty settles in {instrument.market}")


@dataclass(frozen=True)
class SimConfig:
    """Shares are probabilities per message; whatever they leave is NEW trades."""

    seed: int
    start: datetime
    amend_share: float = 0.05
    cancel_share: float = 0.02
    malformed_share: float = 0.0
    invalid_share: float = 0.0
    settle_date_share: float = 0.05  # NEW trades that carry settle_date (the rest: capture's job)
    fees_share: float = 0.5
    mean_gap: timedelta = timedelta(milliseconds=100)  # between NEW executions

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be >= 0")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        shares = (self.amend_share, self.cancel_share, self.malformed_share, self.invalid_share)
        if any(not 0 <= s <= 1 for s in (*shares, self.settle_date_share, self.fees_share)):
            raise ValueError("every share must be between 0 and 1")
        if sum(shares) > 1:
            raise ValueError("amend, cancel, malformed and invalid shares add up to more than 1")
        if self.mean_gap <= timedelta(0):
            raise ValueError("mean_gap must be positive")


class PriceWalk:
    """A mean-reverting random walk per instrument, kept in whole ticks so it stays on tick.

    Each ``step`` moves one instrument by a normal draw of ``volatility`` x price (in ticks),
    pulled back towards its reference price by ``reversion`` of the gap, never below one tick.
    """

    def __init__(
        self,
        instruments: Iterable[PricedInstrument],
        *,
        seed: int | str,
        volatility: float = 0.0005,
        reversion: float = 0.002,
    ):
        self._rng = random.Random(seed)
        self._volatility = volatility
        self._reversion = reversion
        self._tick: dict[str, Decimal] = {}
        self._anchor: dict[str, int] = {}
        self._ticks: dict[str, int] = {}
        for instrument in instruments:
            ticks = max(1, int(instrument.reference_price / instrument.tick_size))
            self._tick[instrument.isin] = instrument.tick_size
            self._anchor[instrument.isin] = self._ticks[instrument.isin] = ticks

    @property
    def isins(self) -> list[str]:
        return list(self._ticks)

    def price(self, isin: str) -> Decimal:
        """The current price of ``isin``, an exact multiple of its tick size."""
        return self._ticks[isin] * self._tick[isin]

    def step(self, isin: str) -> Decimal:
        """Move ``isin`` one step and return its new price."""
        ticks = self._ticks[isin]
        drift = self._reversion * (self._anchor[isin] - ticks)
        ticks += round(self._rng.gauss(drift, self._volatility * ticks))
        self._ticks[isin] = max(1, ticks)
        return self.price(isin)

    def nudge(self, isin: str, ticks: int) -> Decimal:
        """The current price moved by ``ticks`` (floored at one tick), without moving the walk."""
        return max(1, self._ticks[isin] + ticks) * self._tick[isin]


def _text(value: Decimal) -> str:
    """A decimal as the contract's plain digits: no exponent, no trailing zeros."""
    return f"{value.normalize():f}"


def _encode(payload: Payload) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class TradeSimulator:
    """Iterate it for an endless, deterministic stream of ``SimulatedMessage``."""

    def __init__(self, reference: SimReference, config: SimConfig):
        self._ref = reference
        self._config = config
        self._rng = random.Random(config.seed)
        self._walk = PriceWalk(reference.instruments, seed=f"{config.seed}/prices")
        self._now = config.start.astimezone(UTC)
        self._mean_gap_us = config.mean_gap / timedelta(microseconds=1)
        self._sequence = 0
        self._known_isins = {i.isin for i in reference.instruments}
        self._known_accounts = set(reference.accounts)
        self._counterparties = {
            i.market: tuple(c.code for c in reference.counterparties if i.market in c.markets)
            for i in reference.instruments
        }
        self._instruments = {i.isin: i for i in reference.instruments}
        # live trades (latest version) with O(1) random pick and removal
        self._live: dict[str, Payload] = {}
        self._live_ids: list[str] = []
        self._live_index: dict[str, int] = {}

    def __iter__(self) -> Iterator[SimulatedMessage]:
        while True:
            yield self.next_message()

    def generate(self, count: int) -> Iterator[SimulatedMessage]:
        for _ in range(count):
            yield self.next_message()

    def next_message(self) -> SimulatedMessage:
        c = self._config
        draw = self._rng.random()
        for share, make in (
            (c.malformed_share, self._malformed),
            (c.invalid_share, self._invalid),
            (c.amend_share, self._amend),
            (c.cancel_share, self._cancel),
        ):
            if draw < share:
                message = make()
                if message is not None:
                    return message
                break
            draw -= share
        return self._new()

    # ------------------------------------------------------------------ trades of the run

    def _fresh(self) -> Payload:
        rng, ref = self._rng, self._ref
        self._sequence += 1
        self._now += timedelta(microseconds=1 + int(rng.expovariate(1 / self._mean_gap_us)))
        instrument = rng.choice(ref.instruments)
        quantity = self._quantity(instrument)
        price = self._walk.step(instrument.isin)
        payload: Payload = {
            "trade_id": f"SIM{self._config.seed}-{self._sequence:08d}",
            "trade_version": 1,
            "action": "NEW",
            "account": rng.choice(ref.accounts),
            "counterparty": rng.choice(self._counterparties[instrument.market]),
            "instrument": instrument.isin,
            "side": rng.choice(("BUY", "SELL")),
            "quantity": str(quantity),
            "price": _text(price),
            "currency": instrument.currency,
            "trade_date": self._now.date().isoformat(),
            "trade_time": self._now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "venue": rng.choice(ref.venues.get(instrument.market, (instrument.market,))),
            "trader": rng.choice(ref.traders),
        }
        calendar = ref.calendars.get(instrument.market)
        if calendar is not None and rng.random() < self._config.settle_date_share:
            payload["settle_date"] = calendar.settlement_date(self._now.date()).isoformat()
        if rng.random() < self._config.fees_share:
            payload["fees"] = self._fees(quantity, price, instrument.currency)
        return payload

    def _quantity(self, instrument: SimInstrument) -> int:
        rng = self._rng
        if instrument.asset_class == "BOND":
            return rng.choice(BOND_UNITS)
        draw = rng.random()
        if draw < 0.80:  # round lots, mostly small
            return 100 * min(100, 1 + int(rng.expovariate(1 / 4)))
        if draw < 0.95:  # odd lots
            return rng.randint(1, 99)
        return 100 * rng.randint(50, 500)  # blocks

    @staticmethod
    def _fees(quantity: int, price: Decimal, currency: str) -> str:
        return f"{quantize_money(quantity * price * FEE_RATE, currency):f}"

    def _new(self) -> SimulatedMessage:
        payload = self._fresh()
        self._remember(payload)
        return SimulatedMessage(payload["account"], _encode(payload), TradeKind.NEW)

    def _amend(self) -> SimulatedMessage | None:
        if not self._live_ids:
            return None
        rng = self._rng
        payload = dict(self._live[rng.choice(self._live_ids)])
        payload["trade_version"] += 1
        payload["action"] = "AMEND"
        instrument = self._instruments[payload["instrument"]]
        if rng.random() < 0.5:
            old = int(payload["quantity"])
            payload["quantity"] = str(next(q for q in self._quantities(instrument) if q != old))
        else:
            move = rng.choice((-1, 1)) * rng.randint(1, 5)
            payload["price"] = _text(
                max(instrument.tick_size, Decimal(payload["price"]) + move * instrument.tick_size)
            )
        if "fees" in payload:
            quantity, price = int(payload["quantity"]), Decimal(payload["price"])
            payload["fees"] = self._fees(quantity, price, payload["currency"])
        self._remember(payload)
        return SimulatedMessage(payload["account"], _encode(payload), TradeKind.AMEND)

    def _quantities(self, instrument: SimInstrument) -> Iterator[int]:
        while True:
            yield self._quantity(instrument)

    def _cancel(self) -> SimulatedMessage | None:
        if not self._live_ids:
            return None
        payload = dict(self._live[self._rng.choice(self._live_ids)])
        payload["trade_version"] += 1
        payload["action"] = "CANCEL"
        self._forget(payload["trade_id"])
        return SimulatedMessage(payload["account"], _encode(payload), TradeKind.CANCEL)

    def _remember(self, payload: Payload) -> None:
        trade_id = payload["trade_id"]
        if trade_id not in self._live:
            self._live_index[trade_id] = len(self._live_ids)
            self._live_ids.append(trade_id)
        self._live[trade_id] = payload

    def _forget(self, trade_id: str) -> None:
        index = self._live_index.pop(trade_id)
        last = self._live_ids.pop()
        if last != trade_id:
            self._live_ids[index] = last
            self._live_index[last] = index
        del self._live[trade_id]

    # ------------------------------------------------------------------ bad messages

    def _malformed(self) -> SimulatedMessage:
        rng = self._rng
        payload = self._fresh()
        key = payload["account"]
        variant = rng.randrange(5)
        if variant == 0:  # cut off mid-document
            value = _encode(payload)
            return SimulatedMessage(key, value[: len(value) // 2], TradeKind.MALFORMED)
        if variant == 1:  # not even text
            return SimulatedMessage(key, b"\xff\xfe" + _encode(payload)[2:], TradeKind.MALFORMED)
        if variant == 2:  # a JSON number where the contract wants a decimal string
            payload["quantity"] = float(payload["quantity"]) + 0.5
        elif variant == 3:
            del payload[rng.choice(REQUIRED_FIELDS)]
        else:
            payload["side"] = "HOLD"
        return SimulatedMessage(key, _encode(payload), TradeKind.MALFORMED)

    def _invalid(self) -> SimulatedMessage:
        rng = self._rng
        payload = self._fresh()
        if rng.random() < 0.5:
            payload["instrument"] = self._unknown_isin()
        else:
            payload["account"] = self._unknown_account()
        return SimulatedMessage(payload["account"], _encode(payload), TradeKind.INVALID)

    def _unknown_isin(self) -> str:
        while True:
            body = "XS" + "".join(self._rng.choice(ISIN_ALPHABET) for _ in range(9))
            isin = body + isin_check_digit(body)
            if isin not in self._known_isins:
                return isin

    def _unknown_account(self) -> str:
        while True:
            code = f"ACC-{self._rng.randrange(9000, 10000)}"
            if code not in self._known_accounts:
                return code
