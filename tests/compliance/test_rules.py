"""Tests for the pure compliance rules (no Django, no database)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.rules import (
    DEFAULT_RULES,
    REGISTRY,
    Context,
    PreparedRule,
    RecentTrade,
    RuleConfig,
    RuleConfigError,
    RuleOutcome,
    TradeFacts,
    applies_to,
    check_credit_limit,
    check_fat_finger,
    check_inactive_instrument,
    check_max_notional_account_day,
    check_max_notional_trade,
    check_non_business_settle_date,
    check_restricted_list,
    check_suspected_duplicate,
    check_wash_trade,
    evaluate,
    failures,
    passed,
    validate_config,
)
from compliance.rules._format import money, num, qty

D = Decimal
ISIN = "US0378331005"
T0 = datetime(2024, 3, 28, 14, 30, 0, tzinfo=UTC)

FACTS = TradeFacts(
    trade_id="T1",
    trade_version=1,
    action="NEW",
    account="ACC1",
    book="EQ1",
    counterparty="CP1",
    instrument=ISIN,
    instrument_status="ACTIVE",
    side="BUY",
    quantity=D("1000"),
    price=D("100.00"),
    currency="EUR",
    notional=D("100000.00"),
    base_currency="USD",
    notional_base=D("108000.00"),
    trade_time=T0,
    trade_date=date(2024, 3, 28),
    settle_date=date(2024, 4, 2),
    settle_date_is_business_day=True,
)
CTX = Context()


def cfg(code: str, threshold: str | None = None, **params: str) -> RuleConfig:
    return RuleConfig(
        code=code,
        threshold=None if threshold is None else D(threshold),
        params=MappingProxyType(params),
    )


def recent(
    trade_id: str = "T0",
    side: str = "SELL",
    quantity: str = "1000",
    price: str = "100.00",
    seconds: float = -10,
) -> RecentTrade:
    return RecentTrade(trade_id, side, D(quantity), D(price), T0 + timedelta(seconds=seconds))


# ----------------------------------------------------------------------------- model guards


def test_naive_trade_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(FACTS, trade_time=datetime(2024, 3, 28, 14, 30))


def test_naive_recent_trade_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RecentTrade("T0", "SELL", D(1), D(1), datetime(2024, 3, 28))


def test_float_amounts_are_refused() -> None:
    with pytest.raises(TypeError, match="notional_base must be Decimal, got float"):
        replace(FACTS, notional_base=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="last_price must be Decimal"):
        Context(last_price=100.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="threshold must be Decimal"):
        RuleConfig("MAX_NOTIONAL_TRADE", threshold=5)  # type: ignore[arg-type]


def test_non_finite_amounts_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        replace(FACTS, price=D("NaN"))


# ----------------------------------------------------------------------------- RESTRICTED_LIST


def test_restricted_list_fails_for_listed_instrument() -> None:
    out = check_restricted_list(
        FACTS, Context(restricted_instruments=frozenset({ISIN})), cfg("RESTRICTED_LIST")
    )
    assert out == RuleOutcome(
        "RESTRICTED_LIST", False, "instrument US0378331005 is on the restricted list"
    )


def test_restricted_list_passes_for_other_instrument() -> None:
    ctx = Context(restricted_instruments=frozenset({"GB0002634946"}))
    out = check_restricted_list(FACTS, ctx, cfg("RESTRICTED_LIST"))
    assert out == RuleOutcome(
        "RESTRICTED_LIST", True, "instrument US0378331005 is not on the restricted list"
    )


# ----------------------------------------------------------------------------- INACTIVE_INSTRUMENT


@pytest.mark.parametrize("status", ["INACTIVE", "SUSPENDED", "MATURED", ""])
def test_inactive_instrument_fails_for_non_active_status(status: str) -> None:
    out = check_inactive_instrument(
        replace(FACTS, instrument_status=status), CTX, cfg("INACTIVE_INSTRUMENT")
    )
    assert not out.passed
    assert out.detail == f"instrument {ISIN} is {status}; trading requires ACTIVE"


def test_inactive_instrument_passes_active_case_insensitively() -> None:
    out = check_inactive_instrument(
        replace(FACTS, instrument_status=" active "), CTX, cfg("INACTIVE_INSTRUMENT")
    )
    assert out == RuleOutcome("INACTIVE_INSTRUMENT", True, f"instrument {ISIN} is ACTIVE")


def test_inactive_instrument_allowed_statuses_param() -> None:
    config = cfg("INACTIVE_INSTRUMENT", allowed_statuses="active, halted")
    halted = check_inactive_instrument(replace(FACTS, instrument_status="HALTED"), CTX, config)
    suspended = check_inactive_instrument(
        replace(FACTS, instrument_status="SUSPENDED"), CTX, config
    )
    assert halted.passed
    assert not suspended.passed
    assert suspended.detail == f"instrument {ISIN} is SUSPENDED; trading requires ACTIVE or HALTED"


# ----------------------------------------------------------------------------- MAX_NOTIONAL_TRADE


def test_max_notional_trade_fails_above_limit() -> None:
    facts = replace(FACTS, notional_base=D("1250000"))
    out = check_max_notional_trade(facts, CTX, cfg("MAX_NOTIONAL_TRADE", "1000000"))
    assert out == RuleOutcome(
        "MAX_NOTIONAL_TRADE",
        False,
        "notional 1,250,000.00 USD exceeds the per-trade limit 1,000,000.00 USD",
    )


def test_max_notional_trade_passes_exactly_at_limit() -> None:
    facts = replace(FACTS, notional_base=D("1000000.00"))
    out = check_max_notional_trade(facts, CTX, cfg("MAX_NOTIONAL_TRADE", "1000000"))
    assert out == RuleOutcome(
        "MAX_NOTIONAL_TRADE",
        True,
        "notional 1,000,000.00 USD is within the per-trade limit 1,000,000.00 USD",
    )


def test_max_notional_trade_fails_a_fraction_above_and_shows_it() -> None:
    facts = replace(FACTS, notional_base=D("1000000.004"))
    out = check_max_notional_trade(facts, CTX, cfg("MAX_NOTIONAL_TRADE", "1000000"))
    assert not out.passed
    assert out.detail == "notional 1,000,000.004 USD exceeds the per-trade limit 1,000,000.00 USD"


def test_threshold_rule_without_threshold_raises_when_called_directly() -> None:
    with pytest.raises(RuleConfigError, match="needs a threshold"):
        check_max_notional_trade(FACTS, CTX, cfg("MAX_NOTIONAL_TRADE"))


@settings(max_examples=200, deadline=None)
@given(
    a=st.decimals(min_value=0, max_value=10**12, places=2),
    b=st.decimals(min_value=0, max_value=10**12, places=2),
    limit=st.decimals(min_value=0, max_value=10**12, places=2),
)
def test_max_notional_trade_is_monotone_in_notional(a: Decimal, b: Decimal, limit: Decimal) -> None:
    low, high = sorted((a, b))
    config = RuleConfig("MAX_NOTIONAL_TRADE", threshold=limit)
    low_ok = check_max_notional_trade(replace(FACTS, notional_base=low), CTX, config).passed
    high_ok = check_max_notional_trade(replace(FACTS, notional_base=high), CTX, config).passed
    assert not (high_ok and not low_ok)  # a smaller trade never fails where a bigger one passes
    assert high_ok == (high <= limit)


# ----------------------------------------------------------------------------- account day


def test_account_day_fails_when_total_exceeds_limit() -> None:
    ctx = Context(account_day_notional_base=D("4900000"))
    out = check_max_notional_account_day(
        replace(FACTS, notional_base=D("150000")), ctx, cfg("MAX_NOTIONAL_ACCOUNT_DAY", "5000000")
    )
    assert out == RuleOutcome(
        "MAX_NOTIONAL_ACCOUNT_DAY",
        False,
        "account ACC1 notional today 5,050,000.00 USD (4,900,000.00 USD already traded plus "
        "150,000.00 USD this trade) exceeds the daily limit 5,000,000.00 USD",
    )


def test_account_day_passes_exactly_at_limit() -> None:
    ctx = Context(account_day_notional_base=D("4850000"))
    out = check_max_notional_account_day(
        replace(FACTS, notional_base=D("150000")), ctx, cfg("MAX_NOTIONAL_ACCOUNT_DAY", "5000000")
    )
    assert out.passed
    assert out.detail.endswith("is within the daily limit 5,000,000.00 USD")
    assert "notional today 5,000,000.00 USD" in out.detail


def test_account_day_counts_this_trade_even_with_nothing_traded_yet() -> None:
    out = check_max_notional_account_day(
        replace(FACTS, notional_base=D("200")), CTX, cfg("MAX_NOTIONAL_ACCOUNT_DAY", "100")
    )
    assert not out.passed


@settings(max_examples=200, deadline=None)
@given(
    already=st.decimals(min_value=0, max_value=10**12, places=2),
    this=st.decimals(min_value=0, max_value=10**12, places=2),
    limit=st.decimals(min_value=0, max_value=10**12, places=2),
)
def test_account_day_passes_iff_total_within_limit(
    already: Decimal, this: Decimal, limit: Decimal
) -> None:
    out = check_max_notional_account_day(
        replace(FACTS, notional_base=this),
        Context(account_day_notional_base=already),
        RuleConfig("MAX_NOTIONAL_ACCOUNT_DAY", threshold=limit),
    )
    assert out.passed == (already + this <= limit)


# ----------------------------------------------------------------------------- FAT_FINGER


def test_fat_finger_fails_beyond_tolerance() -> None:
    out = check_fat_finger(
        replace(FACTS, price=D("105.50")), Context(last_price=D("100")), cfg("FAT_FINGER", "0.05")
    )
    assert out == RuleOutcome(
        "FAT_FINGER",
        False,
        "price 105.50 is 5.50 % away from the last price 100.00, beyond the tolerance of 5.00 %",
    )


def test_fat_finger_passes_exactly_at_tolerance_both_sides() -> None:
    ctx = Context(last_price=D("100"))
    above = check_fat_finger(replace(FACTS, price=D("105")), ctx, cfg("FAT_FINGER", "0.05"))
    below = check_fat_finger(replace(FACTS, price=D("95")), ctx, cfg("FAT_FINGER", "0.05"))
    assert above.passed
    assert below.passed
    assert below.detail == (
        "price 95.00 is 5.00 % away from the last price 100.00, within the tolerance of 5.00 %"
    )


def test_fat_finger_fails_below_reference() -> None:
    out = check_fat_finger(
        replace(FACTS, price=D("94.99")), Context(last_price=D("100")), cfg("FAT_FINGER", "0.05")
    )
    assert not out.passed


def test_fat_finger_rounds_shown_deviation_up_so_failure_never_reads_as_equal() -> None:
    out = check_fat_finger(
        replace(FACTS, price=D("105.001")), Context(last_price=D("100")), cfg("FAT_FINGER", "0.05")
    )
    assert not out.passed
    assert "is 5.01 % away" in out.detail


@pytest.mark.parametrize("last", [None, D(0), D(-1)])
def test_fat_finger_passes_without_usable_reference_price(last: Decimal | None) -> None:
    out = check_fat_finger(FACTS, Context(last_price=last), cfg("FAT_FINGER", "0.05"))
    assert out == RuleOutcome(
        "FAT_FINGER", True, f"no reference price for {ISIN}; price 100.00 not checked"
    )


@settings(max_examples=200, deadline=None)
@given(
    last=st.decimals(min_value=D("0.0001"), max_value=10**6, places=4),
    tolerance=st.decimals(min_value=0, max_value=1, places=4),
    move=st.decimals(min_value=-1, max_value=1, places=4),
)
def test_fat_finger_is_symmetric_around_last_price(
    last: Decimal, tolerance: Decimal, move: Decimal
) -> None:
    config = RuleConfig("FAT_FINGER", threshold=tolerance)
    ctx = Context(last_price=last)
    up = check_fat_finger(replace(FACTS, price=last + move), ctx, config)
    down = check_fat_finger(replace(FACTS, price=last - move), ctx, config)
    assert up.passed == down.passed == (abs(move) / last <= tolerance)


# ----------------------------------------------------------------------------- CREDIT_LIMIT


def test_credit_limit_fails_when_exposure_plus_trade_exceeds_limit() -> None:
    ctx = Context(counterparty_credit_limit=D("1000000"), counterparty_exposure=D("900000"))
    out = check_credit_limit(FACTS, ctx, cfg("CREDIT_LIMIT"))
    assert out == RuleOutcome(
        "CREDIT_LIMIT",
        False,
        "counterparty CP1 exposure 1,008,000.00 USD after this trade (900,000.00 USD current plus "
        "108,000.00 USD this trade) exceeds the credit limit 1,000,000.00 USD",
    )


def test_credit_limit_passes_exactly_at_limit() -> None:
    ctx = Context(counterparty_credit_limit=D("1008000"), counterparty_exposure=D("900000"))
    out = check_credit_limit(FACTS, ctx, cfg("CREDIT_LIMIT"))
    assert out.passed
    assert out.detail.endswith("is within the credit limit 1,008,000.00 USD")


def test_credit_limit_sell_also_consumes_limit() -> None:
    ctx = Context(counterparty_credit_limit=D("100000"))
    assert not check_credit_limit(replace(FACTS, side="SELL"), ctx, cfg("CREDIT_LIMIT")).passed


def test_credit_limit_missing_limit_passes_by_default() -> None:
    out = check_credit_limit(FACTS, CTX, cfg("CREDIT_LIMIT"))
    assert out == RuleOutcome(
        "CREDIT_LIMIT", True, "no credit limit on file for counterparty CP1; exposure not checked"
    )


def test_credit_limit_missing_limit_fails_when_required() -> None:
    out = check_credit_limit(FACTS, CTX, cfg("CREDIT_LIMIT", require_limit="true"))
    assert out == RuleOutcome(
        "CREDIT_LIMIT", False, "no credit limit on file for counterparty CP1, and one is required"
    )


# ----------------------------------------------------------------------------- settle date


def test_non_business_settle_date_fails() -> None:
    facts = replace(FACTS, settle_date=date(2024, 3, 30), settle_date_is_business_day=False)
    out = check_non_business_settle_date(facts, CTX, cfg("NON_BUSINESS_SETTLE_DATE"))
    assert out == RuleOutcome(
        "NON_BUSINESS_SETTLE_DATE", False, "settle date 2024-03-30 (Saturday) is not a business day"
    )


def test_non_business_settle_date_passes() -> None:
    out = check_non_business_settle_date(FACTS, CTX, cfg("NON_BUSINESS_SETTLE_DATE"))
    assert out == RuleOutcome(
        "NON_BUSINESS_SETTLE_DATE", True, "settle date 2024-04-02 (Tuesday) is a business day"
    )


# ----------------------------------------------------------------------------- WASH_TRADE


def test_wash_trade_fails_for_opposite_side_same_price_within_window() -> None:
    ctx = Context(recent_trades=(recent("T0", "sell", "400", "100.0", -12),))
    out = check_wash_trade(FACTS, ctx, cfg("WASH_TRADE", window_seconds="60"))
    assert out == RuleOutcome(
        "WASH_TRADE",
        False,
        f"account ACC1 traded BUY 1,000 and SELL 400 of {ISIN} at the same price 100.00 "
        "12 s apart (trades T1 and T0; window 60 s)",
    )


def test_wash_trade_counts_a_later_trade_too() -> None:
    ctx = Context(recent_trades=(recent(seconds=30),))
    assert not check_wash_trade(FACTS, ctx, cfg("WASH_TRADE", window_seconds="60")).passed


def test_wash_trade_window_boundary_is_inclusive() -> None:
    at = Context(recent_trades=(recent(seconds=-60),))
    beyond = Context(recent_trades=(recent(seconds=-60.000001),))
    config = cfg("WASH_TRADE", window_seconds="60")
    assert not check_wash_trade(FACTS, at, config).passed
    out = check_wash_trade(FACTS, beyond, config)
    assert out == RuleOutcome(
        "WASH_TRADE",
        True,
        f"no opposite-side trade by account ACC1 in {ISIN} at 100.00 within 60 s",
    )


@pytest.mark.parametrize(
    "other",
    [
        recent(side="BUY"),  # same side is not a wash
        recent(price="100.01"),  # different price
        recent(trade_id="T1"),  # an earlier version of this very trade
    ],
)
def test_wash_trade_passes_for_non_matching_trades(other: RecentTrade) -> None:
    ctx = Context(recent_trades=(other,))
    assert check_wash_trade(FACTS, ctx, cfg("WASH_TRADE")).passed


def test_wash_trade_default_window_is_300_seconds() -> None:
    inside = Context(recent_trades=(recent(seconds=-300),))
    outside = Context(recent_trades=(recent(seconds=-301),))
    assert not check_wash_trade(FACTS, inside, cfg("WASH_TRADE")).passed
    assert check_wash_trade(FACTS, outside, cfg("WASH_TRADE")).passed


def test_wash_trade_reports_nearest_match() -> None:
    ctx = Context(
        recent_trades=(recent("TA", seconds=-50), recent("TB", seconds=5), recent("TC", seconds=-5))
    )
    out = check_wash_trade(FACTS, ctx, cfg("WASH_TRADE"))
    assert "5 s apart (trades T1 and TB;" in out.detail  # TB and TC tie; trade_id breaks it


# ----------------------------------------------------------------------------- duplicates


def test_suspected_duplicate_fails_for_identical_trade_within_window() -> None:
    ctx = Context(recent_trades=(recent("T0", "BUY", "1000.0", "100", -2.5),))
    out = check_suspected_duplicate(FACTS, ctx, cfg("SUSPECTED_DUPLICATE"))
    assert out == RuleOutcome(
        "SUSPECTED_DUPLICATE",
        False,
        f"trade T1 (BUY 1,000 {ISIN} at 100.00) by account ACC1 matches trade T0 2.5 s apart "
        "(window 60 s)",
    )


def test_suspected_duplicate_window_boundary_is_inclusive() -> None:
    config = cfg("SUSPECTED_DUPLICATE", window_seconds="30")
    at = Context(recent_trades=(recent(side="BUY", seconds=30),))
    beyond = Context(recent_trades=(recent(side="BUY", seconds=31),))
    assert not check_suspected_duplicate(FACTS, at, config).passed
    out = check_suspected_duplicate(FACTS, beyond, config)
    assert out == RuleOutcome(
        "SUSPECTED_DUPLICATE",
        True,
        f"no other BUY 1,000 {ISIN} at 100.00 by account ACC1 within 30 s",
    )


@pytest.mark.parametrize(
    "other",
    [
        recent(side="SELL"),
        recent(side="BUY", quantity="999"),
        recent(side="BUY", price="100.5"),
        recent(trade_id="T1", side="BUY"),  # an amendment's previous version is not a duplicate
    ],
)
def test_suspected_duplicate_passes_for_non_matching_trades(other: RecentTrade) -> None:
    ctx = Context(recent_trades=(other,))
    assert check_suspected_duplicate(FACTS, ctx, cfg("SUSPECTED_DUPLICATE")).passed


_recent_trades = st.lists(
    st.builds(
        RecentTrade,
        trade_id=st.sampled_from(["A", "B", "C", "D", "E", "T1"]),
        side=st.sampled_from(["BUY", "SELL"]),
        quantity=st.sampled_from([D(1000), D(500)]),
        price=st.sampled_from([D(100), D("100.5")]),
        trade_time=st.integers(-400, 400).map(lambda s: T0 + timedelta(seconds=s)),
    ),
    max_size=6,
    unique_by=lambda t: t.trade_id,
)


@settings(max_examples=200, deadline=None)
@given(trades=_recent_trades, seed=st.integers(0, 2**32))
def test_pattern_rules_ignore_order_of_recent_trades(trades: list[RecentTrade], seed: int) -> None:
    shuffled = list(trades)
    random.Random(seed).shuffle(shuffled)
    for check, code in (
        (check_wash_trade, "WASH_TRADE"),
        (check_suspected_duplicate, "SUSPECTED_DUPLICATE"),
    ):
        a = check(FACTS, Context(recent_trades=tuple(trades)), cfg(code))
        b = check(FACTS, Context(recent_trades=tuple(shuffled)), cfg(code))
        assert a == b


# ----------------------------------------------------------------------------- scope


@pytest.mark.parametrize(
    ("books", "accounts", "instruments", "applies"),
    [
        ("", "", "", True),  # empty scope means every book, account and instrument
        ("EQ1 EQ2", "", "", True),
        ("FI1", "", "", False),
        ("", "ACC1", "", True),
        ("", "ACC2", "", False),
        ("", "", ISIN, True),
        ("", "", "GB0002634946", False),
        ("EQ1", "ACC1", ISIN, True),
        ("EQ1", "ACC2", "", False),  # scopes combine with AND
        ("FI1", "ACC1", "", False),
    ],
)
def test_applies_to_scope(books: str, accounts: str, instruments: str, applies: bool) -> None:
    config = RuleConfig(
        "RESTRICTED_LIST",
        scope_books=frozenset(books.split()),
        scope_accounts=frozenset(accounts.split()),
        scope_instruments=frozenset(instruments.split()),
    )
    assert applies_to(config, FACTS) is applies


def test_applies_to_ignores_enabled_flag() -> None:
    assert applies_to(RuleConfig("RESTRICTED_LIST", enabled=False), FACTS)


# ----------------------------------------------------------------------------- validate_config


def test_default_rules_are_valid_and_cover_the_registry() -> None:
    assert [r.code for r in DEFAULT_RULES] == list(REGISTRY)
    for rule in DEFAULT_RULES:
        assert rule.description
        assert validate_config(rule.as_config()) == []


def test_default_rule_values() -> None:
    defaults = {r.code: (r.threshold, dict(r.params)) for r in DEFAULT_RULES}
    assert defaults["MAX_NOTIONAL_TRADE"] == (D("10000000"), {})
    assert defaults["MAX_NOTIONAL_ACCOUNT_DAY"] == (D("1000000000"), {})
    assert defaults["FAT_FINGER"] == (D("0.05"), {})
    assert defaults["WASH_TRADE"] == (None, {"window_seconds": "300"})
    assert defaults["SUSPECTED_DUPLICATE"] == (None, {"window_seconds": "60"})
    assert defaults["CREDIT_LIMIT"] == (None, {"require_limit": "false"})
    assert defaults["INACTIVE_INSTRUMENT"] == (None, {"allowed_statuses": "ACTIVE"})


@pytest.mark.parametrize(
    ("config", "errors"),
    [
        (RuleConfig("NOPE"), ["unknown rule code 'NOPE'"]),
        (cfg("FAT_FINGER"), ["FAT_FINGER needs a threshold and none is set"]),
        (
            cfg("MAX_NOTIONAL_TRADE", "-1"),
            ["MAX_NOTIONAL_TRADE threshold must be a non-negative number, got -1"],
        ),
        (
            cfg("MAX_NOTIONAL_TRADE", "Infinity"),
            ["MAX_NOTIONAL_TRADE threshold must be a non-negative number, got Infinity"],
        ),
        (cfg("WASH_TRADE", window_second="60"), ["WASH_TRADE has no parameter 'window_second'"]),
        (
            cfg("WASH_TRADE", window_seconds="0"),
            ["WASH_TRADE parameter window_seconds: expected a positive whole number, got '0'"],
        ),
        (
            cfg("SUSPECTED_DUPLICATE", window_seconds="1.5"),
            ["SUSPECTED_DUPLICATE parameter window_seconds: expected a whole number, got '1.5'"],
        ),
        (
            cfg("CREDIT_LIMIT", require_limit="maybe"),
            ["CREDIT_LIMIT parameter require_limit: expected true or false, got 'maybe'"],
        ),
        (
            cfg("INACTIVE_INSTRUMENT", allowed_statuses=" , "),
            [
                "INACTIVE_INSTRUMENT parameter allowed_statuses: expected a comma-separated "
                "list of statuses, got nothing"
            ],
        ),
        (cfg("MAX_NOTIONAL_TRADE", "0"), []),
        (cfg("RESTRICTED_LIST"), []),
    ],
)
def test_validate_config(config: RuleConfig, errors: list[str]) -> None:
    assert validate_config(config) == errors


def test_bad_param_raises_when_rule_called_directly() -> None:
    with pytest.raises(RuleConfigError, match="window_seconds: expected a whole number"):
        check_wash_trade(FACTS, CTX, cfg("WASH_TRADE", window_seconds="abc"))


# ----------------------------------------------------------------------------- evaluate


def _all_defaults() -> list[RuleConfig]:
    return [r.as_config() for r in DEFAULT_RULES]


def test_evaluate_clean_trade_passes_every_default_rule_in_registry_order() -> None:
    outcomes = evaluate(FACTS, CTX, reversed(_all_defaults()))
    assert [o.code for o in outcomes] == list(REGISTRY)
    assert passed(outcomes)
    assert failures(outcomes) == []


def test_evaluate_reports_each_failure() -> None:
    facts = replace(FACTS, instrument_status="SUSPENDED", settle_date_is_business_day=False)
    ctx = Context(restricted_instruments=frozenset({ISIN}))
    outcomes = evaluate(facts, ctx, _all_defaults())
    assert not passed(outcomes)
    assert [o.code for o in failures(outcomes)] == [
        "RESTRICTED_LIST",
        "INACTIVE_INSTRUMENT",
        "NON_BUSINESS_SETTLE_DATE",
    ]


def test_evaluate_skips_disabled_and_out_of_scope_rules() -> None:
    configs = [
        RuleConfig("RESTRICTED_LIST", enabled=False),
        RuleConfig("NON_BUSINESS_SETTLE_DATE", scope_books=frozenset({"FI1"})),
        RuleConfig("INACTIVE_INSTRUMENT", scope_accounts=frozenset({"ACC1"})),
    ]
    facts = replace(FACTS, settle_date_is_business_day=False)
    ctx = Context(restricted_instruments=frozenset({ISIN}))
    outcomes = evaluate(facts, ctx, configs)
    assert [o.code for o in outcomes] == ["INACTIVE_INSTRUMENT"]
    assert passed(outcomes)


def test_evaluate_disabled_misconfigured_rule_is_silent() -> None:
    configs = [RuleConfig("NOPE", enabled=False), replace(cfg("FAT_FINGER"), enabled=False)]
    assert evaluate(FACTS, CTX, configs) == []


def test_evaluate_fails_closed_on_misconfiguration() -> None:
    outcomes = evaluate(FACTS, CTX, [cfg("FAT_FINGER"), RuleConfig("NOPE")])
    assert outcomes == [
        RuleOutcome(
            "FAT_FINGER", False, "rule misconfigured: FAT_FINGER needs a threshold and none is set"
        ),
        RuleOutcome("NOPE", False, "rule misconfigured: unknown rule code 'NOPE'"),
    ]


@pytest.mark.parametrize("action", ["CANCEL", "cancel"])
def test_evaluate_skips_cancels(action: str) -> None:
    ctx = Context(restricted_instruments=frozenset({ISIN}))
    assert evaluate(replace(FACTS, action=action), ctx, _all_defaults()) == []


def test_evaluate_amend_is_checked() -> None:
    ctx = Context(restricted_instruments=frozenset({ISIN}))
    outcomes = evaluate(replace(FACTS, action="AMEND", trade_version=2), ctx, _all_defaults())
    assert not passed(outcomes)


def test_evaluate_runs_every_row_of_a_shared_code() -> None:
    configs = [
        RuleConfig("MAX_NOTIONAL_TRADE", threshold=D("200000"), scope_books=frozenset({"EQ1"})),
        RuleConfig("MAX_NOTIONAL_TRADE", threshold=D("100000")),
    ]
    outcomes = evaluate(FACTS, CTX, configs)
    assert [(o.passed, o.detail) for o in outcomes] == [
        (False, "notional 108,000.00 USD exceeds the per-trade limit 100,000.00 USD"),
        (True, "notional 108,000.00 USD is within the per-trade limit 200,000.00 USD"),
    ]


def test_passed_of_nothing_is_true() -> None:
    assert passed([])


_configs = st.lists(
    st.builds(
        RuleConfig,
        code=st.sampled_from([*REGISTRY, "UNKNOWN"]),
        enabled=st.booleans(),
        threshold=st.one_of(st.none(), st.decimals(min_value=0, max_value=10**7, places=2)),
        params=st.just(MappingProxyType({})),
        scope_books=st.sampled_from([frozenset(), frozenset({"EQ1"}), frozenset({"FI1"})]),
        scope_accounts=st.sampled_from([frozenset(), frozenset({"ACC1"})]),
        scope_instruments=st.just(frozenset()),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(configs=_configs, seed=st.integers(0, 2**32))
def test_evaluate_is_independent_of_config_order(configs: list[RuleConfig], seed: int) -> None:
    shuffled = list(configs)
    random.Random(seed).shuffle(shuffled)
    ctx = Context(last_price=D("99"), recent_trades=(recent(),))
    assert evaluate(FACTS, ctx, configs) == evaluate(FACTS, ctx, shuffled)


@settings(max_examples=200, deadline=None)
@given(configs=_configs)
def test_evaluate_yields_one_outcome_per_enabled_in_scope_config(configs: list[RuleConfig]) -> None:
    outcomes = evaluate(FACTS, CTX, configs)
    expected = [c for c in configs if c.enabled and applies_to(c, FACTS)]
    assert sorted(o.code for o in outcomes) == sorted(c.code for c in expected)


@settings(max_examples=200, deadline=None)
@given(
    config=_configs.filter(bool).map(lambda configs: configs[0]),
    action=st.sampled_from(["NEW", "AMEND", "CANCEL"]),
)
def test_prepared_rule_gives_what_evaluate_gives_for_the_row_alone(
    config: RuleConfig, action: str
) -> None:
    facts = replace(FACTS, action=action)
    ctx = Context(last_price=D("99"), recent_trades=(recent(),))
    rule = PreparedRule.of(config)
    prepared = [rule.run(facts, ctx)] if rule.applies(facts) else []
    assert prepared == evaluate(facts, ctx, [config])


# ----------------------------------------------------------------------------- formatting


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=-(10**15), max_value=10**15, places=8))
def test_number_formatting_never_hides_a_digit(value: Decimal) -> None:
    assert D(num(value).replace(",", "")) == value
    assert D(qty(value).replace(",", "")) == value


def test_money_formatting_examples() -> None:
    assert money(D("1250000"), "USD") == "1,250,000.00 USD"
    assert money(D("0.5"), "EUR") == "0.50 EUR"
    assert money(D("1E+3"), "JPY") == "1,000.00 JPY"
    assert qty(D("1E+3")) == "1,000"
    assert qty(D("0.125000")) == "0.125"
