"""Exposure and margin for one account: pure functions, no Django, no I/O.

Everything here works on each position's base-currency market value as booked by the P&L
snapshot (:func:`reporting.pnl.valuation`'s ``base_market_value``). Intermediate sums keep full
precision; each reported figure is rounded once with :func:`backoffice.money.quantize_money`.
The method is described in docs/pnl-method.md.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise
from types import MappingProxyType
from typing import Literal

from backoffice.money import quantize_money

ZERO = Decimal(0)

DEFAULT_HAIRCUTS: Mapping[str, Decimal] = MappingProxyType(
    {"EQUITY": Decimal("0.25"), "ETF": Decimal("0.15"), "BOND": Decimal("0.08")}
)
# An asset class nobody has assessed gets the harshest treatment rather than a guess.
UNKNOWN_HAIRCUT = Decimal("0.50")
# 99 % one-day VaR reads the worst 1 % tail of the scenario distribution.
VAR_TAIL = Decimal("0.01")
# Below this many scenarios the 1 % tail is a single observation at best, too thin to trust.
MIN_SCENARIOS = 20

# Returns are ratios of prices: enough digits that rounding is far below any minor unit.
_PRECISION = 60

PriceHistory = Mapping[str, Sequence[tuple[date, Decimal]]]


@dataclass(frozen=True)
class RiskPosition:
    """One open position of the account, valued in the account's base currency (signed)."""

    instrument_id: str
    asset_class: str
    currency: str
    base_market_value: Decimal


@dataclass(frozen=True)
class ExposureBucket:
    gross: Decimal
    net: Decimal


@dataclass(frozen=True)
class Exposure:
    """Gross (sum of absolute values) and net (signed sum) exposure in the base currency."""

    base_currency: str
    gross: Decimal
    net: Decimal
    by_currency: dict[str, ExposureBucket]
    by_asset_class: dict[str, ExposureBucket]


@dataclass(frozen=True)
class MarginResult:
    """Margin requirement, equity and call for one account, all in the base currency.

    ``requirement = max(haircut_requirement, var_99_1d)``, or the haircut requirement alone when
    ``var_fallback`` (too few scenarios; ``var_99_1d`` is then ``None``). ``excess`` is signed
    (negative is a deficit) and ``margin_call = max(0, -excess)``.
    """

    base_currency: str
    equity: Decimal
    haircut_requirement: Decimal
    var_99_1d: Decimal | None
    scenario_count: int
    var_fallback: bool
    binding: Literal["HAIRCUT", "VAR"]
    note: str
    requirement: Decimal
    excess: Decimal
    margin_call: Decimal


def _bucket(values: Iterable[Decimal], currency: str) -> ExposureBucket:
    items = list(values)
    gross = sum((abs(v) for v in items), ZERO)
    return ExposureBucket(
        quantize_money(gross, currency), quantize_money(sum(items, ZERO), currency)
    )


def _group(positions: Sequence[RiskPosition], key: str, currency: str) -> dict[str, ExposureBucket]:
    groups: dict[str, list[Decimal]] = {}
    for position in positions:
        groups.setdefault(getattr(position, key), []).append(position.base_market_value)
    return {name: _bucket(values, currency) for name, values in sorted(groups.items())}


def exposure(positions: Iterable[RiskPosition], base_currency: str) -> Exposure:
    """Gross and net exposure of the account, in total and per currency and asset class.

    Figures are in ``base_currency``, each rounded once from the exact sum; when the inputs are
    booked (already at minor units) the buckets add up exactly to the totals. Asset classes
    are taken as given (any string); bucket keys are sorted.
    """
    items = list(positions)
    total = _bucket((p.base_market_value for p in items), base_currency)
    return Exposure(
        base_currency=base_currency,
        gross=total.gross,
        net=total.net,
        by_currency=_group(items, "currency", base_currency),
        by_asset_class=_group(items, "asset_class", base_currency),
    )


def haircut_requirement(
    positions: Iterable[RiskPosition],
    haircuts: Mapping[str, Decimal] = DEFAULT_HAIRCUTS,
    unknown_haircut: Decimal = UNKNOWN_HAIRCUT,
) -> Decimal:
    """Exact sum of ``|base market value| * haircut[asset_class]``, unknown classes at
    ``unknown_haircut``. Shorts attract the same haircut as longs; the result is never
    negative when the haircuts are not. Not rounded: :func:`margin` books it.
    """
    return sum(
        (
            abs(p.base_market_value) * haircuts.get(p.asset_class, unknown_haircut)
            for p in positions
        ),
        ZERO,
    )


def _closes(instrument_id: str, history: Sequence[tuple[date, Decimal]]) -> dict[date, Decimal]:
    closes: dict[date, Decimal] = {}
    previous: date | None = None
    for day, close in history:
        if previous is not None and day <= previous:
            raise ValueError(f"{instrument_id}: price history must be oldest first, no repeats")
        if close <= 0:
            raise ValueError(f"{instrument_id}: close on {day} must be positive, got {close}")
        closes[day] = close
        previous = day
    return closes


def scenario_pnls(positions: Iterable[RiskPosition], price_history: PriceHistory) -> list[Decimal]:
    """Historical-simulation P&L scenarios for today's positions, oldest first.

    Positions are netted per instrument; flat instruments are ignored. The calendar is every
    date on which any held instrument has a close. For each pair of consecutive calendar dates
    on which every held instrument has a close, the scenario is
    ``sum(market_value * (close_day / close_previous - 1))``; any other date is skipped, so no
    scenario mixes one-day and multi-day returns. An instrument with no history leaves no
    scenario at all. Computed to 60 significant digits, not rounded.
    """
    held: dict[str, Decimal] = {}
    for position in positions:
        held[position.instrument_id] = held.get(position.instrument_id, ZERO) + (
            position.base_market_value
        )
    held = {instrument: value for instrument, value in held.items() if value != 0}
    closes = {i: _closes(i, price_history.get(i, ())) for i in held}
    calendar = sorted({day for series in closes.values() for day in series})
    scenarios: list[Decimal] = []
    with decimal.localcontext() as ctx:
        ctx.prec = _PRECISION
        for previous, day in pairwise(calendar):
            if all(previous in c and day in c for c in closes.values()):
                scenarios.append(
                    sum(
                        (
                            value * (closes[i][day] / closes[i][previous] - 1)
                            for i, value in held.items()
                        ),
                        ZERO,
                    )
                )
    return scenarios


def var_rank(scenario_count: int, tail: Decimal = VAR_TAIL) -> int:
    """The rank k of the scenario read as VaR: ``ceil(tail * scenario_count)``, at least 1."""
    if scenario_count < 1:
        raise ValueError("VaR needs at least one scenario")
    return max(1, math.ceil(tail * scenario_count))


def historical_var(scenarios: Sequence[Decimal], tail: Decimal = VAR_TAIL) -> Decimal:
    """Value at risk as a non-negative loss: the k-th worst scenario P&L, negated, floored at 0.

    With ``k = ceil(tail * N)`` (the 3rd worst of 250 days at 99 %). Positively homogeneous:
    scaling every scenario by ``c > 0`` scales the result by ``c``. Not rounded.
    """
    kth_worst = sorted(scenarios)[var_rank(len(scenarios), tail) - 1]
    return max(ZERO, -kth_worst)


def margin(
    positions: Iterable[RiskPosition],
    cash_balance: Decimal,
    base_currency: str,
    price_history: PriceHistory,
    *,
    haircuts: Mapping[str, Decimal] = DEFAULT_HAIRCUTS,
    unknown_haircut: Decimal = UNKNOWN_HAIRCUT,
    min_scenarios: int = MIN_SCENARIOS,
) -> MarginResult:
    """Margin requirement, equity, excess and call for one account in ``base_currency``.

    ``requirement = max(haircut requirement, 99 % 1-day historical VaR)``; with fewer than
    ``min_scenarios`` scenarios VaR is not computed, the requirement is the haircut
    requirement alone and ``note`` says so. ``equity = cash_balance + sum(market values)``.
    Each component is rounded once, half-even to minor units, and the requirement, excess and
    call are derived from the rounded components, so ``requirement >= each component`` and
    ``margin_call = max(0, requirement - equity)`` hold exactly.
    """
    items = list(positions)
    haircut = quantize_money(haircut_requirement(items, haircuts, unknown_haircut), base_currency)
    scenarios = scenario_pnls(items, price_history)
    count = len(scenarios)
    var: Decimal | None = None
    if count >= min_scenarios:
        var = quantize_money(historical_var(scenarios), base_currency)
        note = f"historical VaR: rank {var_rank(count)} worst of {count} daily scenarios"
    else:
        note = (
            f"only {count} scenarios (< {min_scenarios}): VaR not computed, "
            "requirement is the haircut requirement alone"
        )
    requirement = haircut if var is None else max(haircut, var)
    equity = quantize_money(
        cash_balance + sum((p.base_market_value for p in items), ZERO), base_currency
    )
    excess = equity - requirement
    return MarginResult(
        base_currency=base_currency,
        equity=equity,
        haircut_requirement=haircut,
        var_99_1d=var,
        scenario_count=count,
        var_fallback=var is None,
        binding="VAR" if var is not None and var > haircut else "HAIRCUT",
        note=note,
        requirement=requirement,
        excess=excess,
        margin_call=quantize_money(max(ZERO, -excess), base_currency),
    )
