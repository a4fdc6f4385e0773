"""The trade simulator: deterministic, on contract, and only ever amending live trades."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.streaming.schemas import SchemaError, registry
from trades.calendar import MarketCalendar
from trades.simulator import (
    BOND_UNITS,
    PriceWalk,
    SimConfig,
    SimCounterparty,
    SimInstrument,
    SimReference,
    TradeKind,
    TradeSimulator,
    isin_check_digit,
    isin_is_valid,
)

START = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)  # the day before Thanksgiving
INSTRUMENTS = (
    SimInstrument("US0378331005", "USD", "XNAS", Decimal("0.01"), Decimal("231.40")),
    SimInstrument("US46625H1005", "USD", "XNYS", Decimal("0.01"), Decimal("243.50")),
    SimInstrument("DE0007164600", "EUR", "XETR", Decimal("0.05"), Decimal("228.45")),
    SimInstrument("FR0000133308", "EUR", "XPAR", Decimal("0.002"), Decimal("10.284")),
    SimInstrument("DE0001102614", "EUR", "XETR", Decimal("0.001"), Decimal("99.412"), "BOND"),
)
ACCOUNTS = ("ACC-0001", "ACC-0002", "ACC-0003", "ACC-0007")
US, EU = frozenset({"XNYS", "XNAS"}), frozenset({"XETR", "XPAR"})
NYSE = MarketCalendar("NYSE", frozenset({date(2026, 11, 26)}), settlement_cycle=1)
TARGET2 = MarketCalendar("TARGET2", frozenset({date(2026, 12, 25)}), settlement_cycle=2)
REFERENCE = SimReference(
    instruments=INSTRUMENTS,
    accounts=ACCOUNTS,
    counterparties=(
        SimCounterparty("CP-US", US),
        SimCounterparty("CP-EU", EU),
        SimCounterparty("CP-ALL", US | EU),
    ),
    calendars={"XNYS": NYSE, "XNAS": NYSE, "XETR": TARGET2, "XPAR": TARGET2},
)
TICKS = {i.isin: i.tick_size for i in INSTRUMENTS}
SHARES = {"amend_share": 0.05, "cancel_share": 0.02, "malformed_share": 0.03, "invalid_share": 0.02}


def simulate(count, *, seed=7, **shares):
    config = SimConfig(seed=seed, start=START, **shares)
    return list(TradeSimulator(REFERENCE, config).generate(count))


def decoded(messages, *kinds):
    return [json.loads(m.value) for m in messages if m.kind in kinds]


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    first, again = simulate(3000, **SHARES), simulate(3000, **SHARES)
    assert first == again
    assert [m.value for m in simulate(3000, seed=8, **SHARES)] != [m.value for m in first]


def test_kind_shares_are_close_to_the_configured_ones_over_a_large_run():
    n = 40_000
    kinds = Counter(m.kind for m in simulate(n, **SHARES))
    for kind, share in (
        (TradeKind.AMEND, 0.05),
        (TradeKind.CANCEL, 0.02),
        (TradeKind.MALFORMED, 0.03),
        (TradeKind.INVALID, 0.02),
    ):
        assert abs(kinds[kind] / n - share) < 0.15 * share, (kind, kinds[kind])
    assert abs(kinds[TradeKind.NEW] / n - 0.88) < 0.01


def test_with_default_shares_there_are_no_bad_messages():
    kinds = Counter(m.kind for m in simulate(5000))
    assert kinds[TradeKind.MALFORMED] == kinds[TradeKind.INVALID] == 0
    assert kinds[TradeKind.AMEND] > 0
    assert kinds[TradeKind.CANCEL] > 0


def test_amends_and_cancels_only_reference_earlier_live_trades_with_the_next_version():
    live: dict[str, dict] = {}
    cancelled: set[str] = set()
    for message in simulate(20_000, **SHARES):
        if message.kind not in (TradeKind.NEW, TradeKind.AMEND, TradeKind.CANCEL):
            continue
        trade = json.loads(message.value)
        trade_id = trade["trade_id"]
        assert trade["action"] == message.kind
        if message.kind is TradeKind.NEW:
            assert trade_id not in live
            assert trade_id not in cancelled
            assert trade["trade_version"] == 1
            live[trade_id] = trade
            continue
        previous = live[trade_id]  # KeyError = an amend/cancel of an unknown or dead trade
        assert trade["trade_version"] == previous["trade_version"] + 1
        unchanged = {"account", "counterparty", "instrument", "side", "trade_date", "trade_time"}
        assert {k: trade[k] for k in unchanged} == {k: previous[k] for k in unchanged}
        if message.kind is TradeKind.AMEND:
            assert (trade["quantity"], trade["price"]) != (previous["quantity"], previous["price"])
            live[trade_id] = trade
        else:
            assert (trade["quantity"], trade["price"]) == (previous["quantity"], previous["price"])
            cancelled.add(live.pop(trade_id)["trade_id"])
    assert cancelled


def test_every_new_amend_and_cancel_validates_against_the_inbound_contract():
    messages = simulate(5000, **SHARES)
    for trade in decoded(messages, TradeKind.NEW, TradeKind.AMEND, TradeKind.CANCEL):
        registry().validate("trades.executed", 1, trade)


def test_malformed_messages_fail_to_decode_or_to_validate():
    malformed = [m for m in simulate(5000, **SHARES) if m.kind is TradeKind.MALFORMED]
    assert len(malformed) > 50
    undecodable = 0
    for message in malformed:
        try:
            payload = json.loads(message.value.decode())
        except (UnicodeDecodeError, ValueError):
            undecodable += 1
            continue
        with pytest.raises(SchemaError):
            registry().validate("trades.executed", 1, payload)
    assert 0 < undecodable < len(malformed)


def test_invalid_messages_are_on_contract_but_name_an_unknown_instrument_or_account():
    messages = simulate(5000, **SHARES)
    invalid = [m for m in messages if m.kind is TradeKind.INVALID]
    assert len(invalid) > 30
    reasons: Counter[str] = Counter()
    for message in invalid:
        trade = json.loads(message.value)
        registry().validate("trades.executed", 1, trade)
        assert message.key == trade["account"]
        if trade["instrument"] not in TICKS:
            assert isin_is_valid(trade["instrument"])
            reasons["instrument"] += 1
        else:
            assert trade["account"] not in ACCOUNTS
            reasons["account"] += 1
    assert reasons["instrument"]
    assert reasons["account"]


def test_prices_are_on_tick_and_positive_even_after_amendments():
    for trade in decoded(simulate(10_000, **SHARES), TradeKind.NEW, TradeKind.AMEND):
        price = Decimal(trade["price"])
        assert price > 0
        assert price % TICKS[trade["instrument"]] == 0, trade


def test_the_key_is_the_account_of_the_trade():
    for message in simulate(2000, **SHARES):
        if message.kind is not TradeKind.MALFORMED:
            assert message.key == json.loads(message.value)["account"]
        assert message.key


def test_new_trade_times_advance_from_the_start_and_the_trade_date_is_their_date():
    trades = decoded(simulate(5000, **SHARES), TradeKind.NEW)
    times = [datetime.fromisoformat(t["trade_time"]) for t in trades]
    assert times[0] > START
    assert all(a < b for a, b in itertools.pairwise(times))
    assert all(
        t["trade_date"] == ts.date().isoformat() for t, ts in zip(trades, times, strict=True)
    )


def test_most_trades_leave_the_settlement_date_to_capture_and_the_rest_are_t_plus_n():
    trades = decoded(simulate(5000), TradeKind.NEW)
    with_date = [t for t in trades if "settle_date" in t]
    assert 0 < len(with_date) < 0.1 * len(trades)
    expected = {"USD": "2026-11-27", "EUR": "2026-11-27"}  # US skips Thanksgiving; EU is T+2
    assert {t["settle_date"] for t in with_date} == {expected[t["currency"]] for t in with_date}


def test_counterparties_settle_in_the_market_of_the_instrument():
    markets = {i.isin: i.market for i in INSTRUMENTS}
    for trade in decoded(simulate(3000), TradeKind.NEW):
        counterparty = trade["counterparty"]
        assert counterparty == "CP-ALL" or markets[trade["instrument"]] in (
            US if counterparty == "CP-US" else EU
        )


def test_bonds_trade_in_nominal_blocks_and_shares_mostly_in_round_lots():
    trades = decoded(simulate(5000), TradeKind.NEW)
    bonds = [int(t["quantity"]) for t in trades if t["instrument"] == "DE0001102614"]
    shares = [int(t["quantity"]) for t in trades if t["instrument"] != "DE0001102614"]
    assert bonds
    assert set(bonds) <= set(BOND_UNITS)  # units of 100 nominal: 10k to 1m nominal
    assert sum(q % 100 == 0 for q in shares) / len(shares) > 0.75


def test_the_price_walk_stays_on_tick_and_near_its_reference():
    walk = PriceWalk(INSTRUMENTS, seed=1)
    for _ in range(20_000):
        for instrument in INSTRUMENTS:
            price = walk.step(instrument.isin)
            assert price > 0
            assert price % instrument.tick_size == 0
    for instrument in INSTRUMENTS:
        assert instrument.reference_price / 3 < walk.price(instrument.isin)
        assert walk.price(instrument.isin) < instrument.reference_price * 3


def test_isin_check_digits_match_published_isins():
    for isin in ("US0378331005", "DE0007164600", "FR0000120271", "NL0000235190", "US02079K3059"):
        assert isin_check_digit(isin[:11]) == isin[-1]
        assert isin_is_valid(isin)
    assert not isin_is_valid("US0378331006")
    assert not isin_is_valid("us0378331005")
    assert not isin_is_valid("US037833100")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amend_share": 0.6, "cancel_share": 0.5}, "add up to more than 1"),
        ({"invalid_share": -0.1}, "between 0 and 1"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"start": datetime(2026, 11, 25, 14, 30)}, "timezone-aware"),
        ({"mean_gap": timedelta(0)}, "mean_gap must be positive"),
    ],
)
def test_it_refuses_a_configuration_that_cannot_be_simulated(changes, message):
    options = {"seed": 1, "start": START, **changes}
    with pytest.raises(ValueError, match=message):
        SimConfig(**options)


def test_it_refuses_instruments_no_counterparty_can_settle():
    with pytest.raises(ValueError, match="no counterparty settles in XNAS"):
        SimReference(INSTRUMENTS[:1], ACCOUNTS, (SimCounterparty("CP-EU", EU),))
