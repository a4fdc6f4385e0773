"""Hand-worked examples and invariants for reporting.risk."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.risk import (
    DEFAULT_HAIRCUTS,
    ExposureBucket,
    RiskPosition,
    exposure,
    haircut_requirement,
    historical_var,
    margin,
    scenario_pnls,
    var_rank,
)

D = Decimal
DAY0 = date(2024, 1, 1)


def pos(instrument: str, value: str, asset_class: str = "EQUITY", currency: str = "USD"):
    return RiskPosition(instrument, asset_class, currency, D(value))


def days(n: int) -> list[date]:
    return [DAY0 + timedelta(days=i) for i in range(n)]


def round_trips(*drops: str) -> list[tuple[date, Decimal]]:
    """Closes 100, 100*(1+r1), 100, 100*(1+r2), 100, ...: each drop is one exact losing day."""
    closes = [D(100)]
    for drop in drops:
        closes += [D(100) * (1 + D(drop)), D(100)]
    return list(zip(days(len(closes)), closes, strict=True))


BOOK = [
    pos("AAPL", "1000.00"),
    pos("VOD", "-500.00", currency="GBP"),
    pos("BUND", "2000.00", asset_class="BOND", currency="EUR"),
]


def test_exposure_gross_net_and_breakdowns():
    result = exposure(BOOK, "USD")
    assert (result.gross, result.net) == (D("3500.00"), D("2500.00"))
    assert result.by_asset_class == {
        "BOND": ExposureBucket(D("2000.00"), D("2000.00")),
        "EQUITY": ExposureBucket(D("1500.00"), D("500.00")),
    }
    assert result.by_currency == {
        "EUR": ExposureBucket(D("2000.00"), D("2000.00")),
        "GBP": ExposureBucket(D("500.00"), D("-500.00")),
        "USD": ExposureBucket(D("1000.00"), D("1000.00")),
    }


def test_exposure_of_an_empty_book_is_zero():
    result = exposure([], "JPY")
    assert (result.gross, result.net, result.by_currency) == (D(0), D(0), {})


def test_haircut_requirement_uses_defaults_and_unknown_rate():
    # 1000*0.25 + 500*0.25 + 2000*0.08 + 100*0.50
    book = [*BOOK, pos("BTC", "100.00", asset_class="CRYPTO")]
    assert haircut_requirement(book) == D("585.00")
    custom = dict(DEFAULT_HAIRCUTS, CRYPTO=D("1"))
    assert haircut_requirement(book, custom, D("0.5")) == D("635.00")


def test_var_rank_is_ceil_of_one_percent():
    assert [var_rank(n) for n in (1, 20, 100, 101, 250)] == [1, 1, 1, 2, 3]
    with pytest.raises(ValueError, match="at least one"):
        var_rank(0)


def test_var_reads_the_kth_worst_scenario():
    # 250 scenarios: losses of 5, 4, 3 % and 122 of 1 %, each followed by a recovery day.
    history = {"AAPL": round_trips("-0.05", "-0.04", "-0.03", *["-0.01"] * 122)}
    scenarios = scenario_pnls([pos("AAPL", "10000.00")], history)
    assert len(scenarios) == 250
    assert scenarios[0] == D(-500)
    assert scenarios[1] > 0
    # k = ceil(2.5) = 3: the third worst day, -3 % of 10 000.
    assert historical_var(scenarios) == D(300)


def test_var_is_floored_at_zero_when_every_scenario_gains():
    assert historical_var([D(5), D(1), D(3)]) == 0


def test_short_position_loses_when_prices_rise():
    history = {"X": [(DAY0, D(100)), (DAY0 + timedelta(days=1), D(105))]}
    assert scenario_pnls([pos("X", "-10000")], history) == [D(-500)]


def test_days_missing_for_any_instrument_are_skipped():
    a = list(zip(days(5), [D(100), D(101), D(102), D(103), D(104)], strict=True))
    b_days = [d for i, d in enumerate(days(5)) if i != 2]
    b = list(zip(b_days, [D(50), D(49), D(51), D(50)], strict=True))
    scenarios = scenario_pnls([pos("A", "1000"), pos("B", "2000")], {"A": a, "B": b})
    # Only day0→1 and day3→4 have both instruments on both days.
    with localcontext(prec=60):
        assert scenarios == [
            D(1000) * (D(101) / D(100) - 1) + D(2000) * (D(49) / D(50) - 1),
            D(1000) * (D(104) / D(103) - 1) + D(2000) * (D(50) / D(51) - 1),
        ]


def test_an_instrument_without_history_leaves_no_scenarios():
    history = {"A": round_trips(*["-0.01"] * 20)}
    assert scenario_pnls([pos("A", "1000"), pos("B", "1000")], history) == []


def test_positions_are_netted_per_instrument_and_flat_ones_ignored():
    history = {"A": round_trips("-0.02")}
    both = [pos("A", "1000"), pos("A", "500"), pos("FLAT", "100"), pos("FLAT", "-100")]
    assert scenario_pnls(both, history)[0] == D(-30)


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([(DAY0, D(1)), (DAY0, D(2))], "oldest first"),
        ([(DAY0 + timedelta(days=1), D(1)), (DAY0, D(2))], "oldest first"),
        ([(DAY0, D(0))], "positive"),
    ],
)
def test_bad_price_history_is_refused(history, message):
    with pytest.raises(ValueError, match=message):
        scenario_pnls([pos("A", "1")], {"A": history})


def test_margin_haircut_binds_and_no_call():
    history = {"AAPL": round_trips(*["-0.03"] * 10)}
    result = margin([pos("AAPL", "10000.00")], D("1000.00"), "USD", history)
    # 20 scenarios, k = 1: worst day -3 % = 300 < haircut 2500.
    assert result.scenario_count == 20
    assert result.var_99_1d == D("300.00")
    assert result.haircut_requirement == D("2500.00")
    assert (result.binding, result.var_fallback) == ("HAIRCUT", False)
    assert result.requirement == D("2500.00")
    assert result.equity == D("11000.00")
    assert result.excess == D("8500.00")
    assert result.margin_call == D("0.00")


def test_margin_var_binds_and_calls_the_deficit():
    history = {"BUND": round_trips("-0.10", *["-0.01"] * 9)}
    book = [pos("BUND", "10000.00", asset_class="BOND")]
    result = margin(book, D("-9500.00"), "USD", history)
    # Haircut 10000*0.08 = 800 < VaR 1000; equity 500 leaves a 500 deficit.
    assert (result.var_99_1d, result.binding) == (D("1000.00"), "VAR")
    assert result.requirement == D("1000.00")
    assert result.equity == D("500.00")
    assert result.excess == D("-500.00")
    assert result.margin_call == D("500.00")


def test_margin_falls_back_to_haircut_with_too_few_scenarios():
    history = {"AAPL": round_trips("-0.50", *["-0.01"] * 8)}
    result = margin([pos("AAPL", "10000.00")], D(0), "USD", history)
    assert result.scenario_count == 18
    assert result.var_99_1d is None
    assert result.var_fallback
    assert "haircut requirement alone" in result.note
    assert result.requirement == D("2500.00")


def test_margin_call_is_quantised_to_the_base_currency():
    result = margin([pos("A", "1000")], D("-800.4"), "JPY", {})
    # Haircut 250 vs equity 199.6 -> 200 yen: call 50.
    assert (result.equity, result.requirement, result.margin_call) == (D(200), D(250), D(50))


# --- invariants ---------------------------------------------------------------------------

money = st.decimals(min_value=D(-(10**6)), max_value=D(10**6), places=2)
closes = st.decimals(min_value=D("0.01"), max_value=D(1000), places=2)


@st.composite
def books(draw: st.DrawFn) -> tuple[list[RiskPosition], dict[str, list[tuple[date, Decimal]]]]:
    names = draw(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=5, unique=True))
    positions = [
        RiskPosition(n, draw(st.sampled_from(["EQUITY", "ETF", "BOND", "FX"])), "USD", draw(money))
        for n in names
    ]
    calendar = days(30)
    history = {
        n: [(d, draw(closes)) for d in calendar if draw(st.integers(0, 9))]  # ~10 % days missing
        for n in names
    }
    return positions, history


@settings(deadline=None)
@given(scenarios=st.lists(money, min_size=1, max_size=300))
def test_var_is_non_negative_and_at_most_the_worst_loss(scenarios):
    var = historical_var(scenarios)
    assert var >= 0
    assert var <= max(D(0), -min(scenarios))


@settings(deadline=None)
@given(
    scenarios=st.lists(money, min_size=1, max_size=300),
    k=st.decimals(min_value=D("0.01"), max_value=D(100), places=2),
)
def test_var_is_positively_homogeneous(scenarios, k):
    assert historical_var([k * s for s in scenarios]) == k * historical_var(scenarios)


@settings(deadline=None)
@given(book=books(), k=st.integers(min_value=1, max_value=50))
def test_scaling_every_position_by_k_scales_var_by_k(book, k):
    positions, history = book
    scaled = [
        RiskPosition(p.instrument_id, p.asset_class, p.currency, k * p.base_market_value)
        for p in positions
    ]
    base = scenario_pnls(positions, history)
    bigger = scenario_pnls(scaled, history)
    assert len(bigger) == len(base)
    # Scenario sums carry 60 significant digits: compare relative to size, far below a cent.
    with localcontext(prec=80):
        for small, large in zip(base, bigger, strict=True):
            assert abs(large - k * small) <= D("1e-40") * max(D(1), abs(large))
        if base:
            var = historical_var(bigger)
            assert abs(var - k * historical_var(base)) <= D("1e-40") * max(D(1), var)


@settings(deadline=None)
@given(book=books(), cash=money, min_scenarios=st.integers(min_value=1, max_value=40))
def test_margin_requirement_dominates_components_and_call_covers_deficit(book, cash, min_scenarios):
    positions, history = book
    result = margin(positions, cash, "USD", history, min_scenarios=min_scenarios)
    assert result.requirement >= result.haircut_requirement >= 0
    assert result.var_fallback == (result.scenario_count < min_scenarios)
    if result.var_99_1d is not None:
        assert result.requirement >= result.var_99_1d >= 0
    assert result.requirement in (result.haircut_requirement, result.var_99_1d)
    assert result.equity == cash + sum((p.base_market_value for p in positions), D(0))
    assert result.excess == result.equity - result.requirement
    assert result.margin_call == max(D(0), result.requirement - result.equity)
    assert (result.margin_call > 0) == (result.equity < result.requirement)


@settings(deadline=None)
@given(book=books())
def test_exposure_buckets_add_up_to_totals(book):
    positions, _ = book
    result = exposure(positions, "USD")
    assert result.gross >= abs(result.net)
    for buckets in (result.by_currency, result.by_asset_class):
        assert sum((b.gross for b in buckets.values()), D(0)) == result.gross
        assert sum((b.net for b in buckets.values()), D(0)) == result.net
