"""One pure function per compliance rule: ``(facts, context, config) -> RuleOutcome``.

Limits are inclusive: a figure exactly at its limit (or a gap exactly at a time window) is
treated as within it, so a notional at the limit passes while a time gap at the window still
counts as a wash trade or duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import ROUND_UP

from compliance.rules._format import money, num, pct, qty, seconds
from compliance.rules.model import Context, RecentTrade, RuleConfig, RuleOutcome, TradeFacts
from compliance.rules.params import bool_param, int_param, set_param, threshold


def check_restricted_list(facts: TradeFacts, context: Context, config: RuleConfig) -> RuleOutcome:
    """RESTRICTED_LIST: fail when the instrument is on the restricted list.

    The list is ``context.restricted_instruments`` (ISINs, matched exactly); the rule has no
    threshold or parameters.
    """
    if facts.instrument in context.restricted_instruments:
        return RuleOutcome(
            config.code, False, f"instrument {facts.instrument} is on the restricted list"
        )
    return RuleOutcome(
        config.code, True, f"instrument {facts.instrument} is not on the restricted list"
    )


def check_inactive_instrument(
    facts: TradeFacts, context: Context, config: RuleConfig
) -> RuleOutcome:
    """INACTIVE_INSTRUMENT: fail unless the instrument's status is an allowed trading status.

    Allowed statuses come from parameter ``allowed_statuses`` (comma-separated, default
    ``ACTIVE``), compared case-insensitively. It is an allow-list so that INACTIVE, SUSPENDED or
    any status the reference data adds later fails rather than slipping through.
    """
    allowed = set_param(config, "allowed_statuses")
    status = facts.instrument_status.strip().upper()
    if status in allowed:
        return RuleOutcome(config.code, True, f"instrument {facts.instrument} is {status}")
    return RuleOutcome(
        config.code,
        False,
        f"instrument {facts.instrument} is {status}; trading requires "
        f"{' or '.join(sorted(allowed))}",
    )


def check_max_notional_trade(
    facts: TradeFacts, context: Context, config: RuleConfig
) -> RuleOutcome:
    """MAX_NOTIONAL_TRADE: fail when this trade's base-currency notional exceeds the threshold.

    The threshold is a per-trade limit in the base currency, compared with ``notional_base``;
    a notional exactly equal to the limit passes.
    """
    limit = threshold(config)
    notional = money(facts.notional_base, facts.base_currency)
    limit_text = money(limit, facts.base_currency)
    if facts.notional_base > limit:
        return RuleOutcome(
            config.code, False, f"notional {notional} exceeds the per-trade limit {limit_text}"
        )
    return RuleOutcome(
        config.code, True, f"notional {notional} is within the per-trade limit {limit_text}"
    )


def check_max_notional_account_day(
    facts: TradeFacts, context: Context, config: RuleConfig
) -> RuleOutcome:
    """MAX_NOTIONAL_ACCOUNT_DAY: fail when the account's day notional would exceed the threshold.

    The day total is ``context.account_day_notional_base`` (already traded today, excluding this
    trade) plus this trade's ``notional_base``, gross and in the base currency. A total exactly
    equal to the limit passes.
    """
    limit = threshold(config)
    ccy = facts.base_currency
    total = context.account_day_notional_base + facts.notional_base
    sentence = (
        f"account {facts.account} notional today {money(total, ccy)} "
        f"({money(context.account_day_notional_base, ccy)} already traded plus "
        f"{money(facts.notional_base, ccy)} this trade)"
    )
    if total > limit:
        return RuleOutcome(
            config.code, False, f"{sentence} exceeds the daily limit {money(limit, ccy)}"
        )
    return RuleOutcome(
        config.code, True, f"{sentence} is within the daily limit {money(limit, ccy)}"
    )


def check_fat_finger(facts: TradeFacts, context: Context, config: RuleConfig) -> RuleOutcome:
    """FAT_FINGER: fail when the price is further from the last market price than the tolerance.

    The threshold is a fraction (0.05 = 5 %); the deviation is ``|price - last| / last``, and a
    deviation exactly equal to the tolerance passes. With no last price, or a non-positive one
    that cannot serve as a reference, the rule passes and says no reference price was available.
    """
    tolerance = threshold(config)
    last = context.last_price
    if last is None or last <= 0:
        return RuleOutcome(
            config.code,
            True,
            f"no reference price for {facts.instrument}; price {num(facts.price)} not checked",
        )
    deviation = abs(facts.price - last) / last
    # The shown deviation is rounded up so a failing price never reads as equal to the tolerance.
    away = (
        f"price {num(facts.price)} is {pct(deviation, ROUND_UP)} away from "
        f"the last price {num(last)}"
    )
    if deviation > tolerance:
        return RuleOutcome(config.code, False, f"{away}, beyond the tolerance of {pct(tolerance)}")
    return RuleOutcome(config.code, True, f"{away}, within the tolerance of {pct(tolerance)}")


def check_credit_limit(facts: TradeFacts, context: Context, config: RuleConfig) -> RuleOutcome:
    """CREDIT_LIMIT: fail when counterparty exposure plus this trade would exceed the credit limit.

    Exposure after the trade is ``context.counterparty_exposure + facts.notional_base`` (gross:
    buys and sells both carry settlement risk), compared in the base currency with
    ``context.counterparty_credit_limit``; exactly at the limit passes. With no limit on file the
    rule passes, unless parameter ``require_limit`` is true, in which case it fails.
    """
    limit = context.counterparty_credit_limit
    ccy = facts.base_currency
    if limit is None:
        missing = f"no credit limit on file for counterparty {facts.counterparty}"
        if bool_param(config, "require_limit"):
            return RuleOutcome(config.code, False, f"{missing}, and one is required")
        return RuleOutcome(config.code, True, f"{missing}; exposure not checked")
    after = context.counterparty_exposure + facts.notional_base
    sentence = (
        f"counterparty {facts.counterparty} exposure {money(after, ccy)} after this trade "
        f"({money(context.counterparty_exposure, ccy)} current plus "
        f"{money(facts.notional_base, ccy)} this trade)"
    )
    if after > limit:
        return RuleOutcome(
            config.code, False, f"{sentence} exceeds the credit limit {money(limit, ccy)}"
        )
    return RuleOutcome(
        config.code, True, f"{sentence} is within the credit limit {money(limit, ccy)}"
    )


def check_non_business_settle_date(
    facts: TradeFacts, context: Context, config: RuleConfig
) -> RuleOutcome:
    """NON_BUSINESS_SETTLE_DATE: fail when the settle date is not a business day.

    The decision is the caller's ``settle_date_is_business_day`` flag, computed from the
    settlement market's calendar; the rule reports it with the date and weekday.
    """
    day = f"settle date {facts.settle_date.isoformat()} ({facts.settle_date:%A})"
    if facts.settle_date_is_business_day:
        return RuleOutcome(config.code, True, f"{day} is a business day")
    return RuleOutcome(config.code, False, f"{day} is not a business day")


def _others_within(facts: TradeFacts, context: Context, window: timedelta) -> list[RecentTrade]:
    # An earlier version of the same trade is not a counterpart, hence the trade_id filter.
    return [
        t
        for t in context.recent_trades
        if t.trade_id != facts.trade_id and abs(t.trade_time - facts.trade_time) <= window
    ]


def _nearest(facts: TradeFacts, matches: Sequence[RecentTrade]) -> RecentTrade:
    # The closest match is reported, ties broken by trade_id so the detail is deterministic.
    return min(matches, key=lambda t: (abs(t.trade_time - facts.trade_time), t.trade_id))


def check_wash_trade(facts: TradeFacts, context: Context, config: RuleConfig) -> RuleOutcome:
    """WASH_TRADE: fail when the account traded the other side of the instrument at the same price.

    A recent trade (``context.recent_trades``: same account and instrument, different trade_id)
    on the opposite side at a numerically equal price, within ``window_seconds`` (parameter,
    default 300) before or after this trade, is a wash; a gap exactly equal to the window counts.
    Quantities need not match.
    """
    window_s = int_param(config, "window_seconds")
    side = facts.side.strip().upper()
    matches = [
        t
        for t in _others_within(facts, context, timedelta(seconds=window_s))
        if t.side.strip().upper() != side and t.price == facts.price
    ]
    if not matches:
        return RuleOutcome(
            config.code,
            True,
            f"no opposite-side trade by account {facts.account} in {facts.instrument} at "
            f"{num(facts.price)} within {window_s} s",
        )
    other = _nearest(facts, matches)
    return RuleOutcome(
        config.code,
        False,
        f"account {facts.account} traded {side} {qty(facts.quantity)} and "
        f"{other.side.strip().upper()} {qty(other.quantity)} of {facts.instrument} at the same "
        f"price {num(facts.price)} {seconds(other.trade_time - facts.trade_time)} apart "
        f"(trades {facts.trade_id} and {other.trade_id}; window {window_s} s)",
    )


def check_suspected_duplicate(
    facts: TradeFacts, context: Context, config: RuleConfig
) -> RuleOutcome:
    """SUSPECTED_DUPLICATE: fail when another trade looks like a double booking of this one.

    A recent trade (same account and instrument, different trade_id) with the same side and
    numerically equal quantity and price, within ``window_seconds`` (parameter, default 60)
    before or after this trade, is a suspected duplicate; a gap exactly at the window counts.
    """
    window_s = int_param(config, "window_seconds")
    side = facts.side.strip().upper()
    matches = [
        t
        for t in _others_within(facts, context, timedelta(seconds=window_s))
        if t.side.strip().upper() == side
        and t.quantity == facts.quantity
        and t.price == facts.price
    ]
    what = f"{side} {qty(facts.quantity)} {facts.instrument} at {num(facts.price)}"
    if not matches:
        return RuleOutcome(
            config.code,
            True,
            f"no other {what} by account {facts.account} within {window_s} s",
        )
    other = _nearest(facts, matches)
    return RuleOutcome(
        config.code,
        False,
        f"trade {facts.trade_id} ({what}) by account {facts.account} matches trade "
        f"{other.trade_id} {seconds(other.trade_time - facts.trade_time)} apart "
        f"(window {window_s} s)",
    )
