"""The ``reporting`` stage: validated trades and market prices in, live positions and P&L out.

The handler checks what the stage needs besides the schema (a known instrument for a price, an
FX rate to the book's base currency for a trade), refuses the rest to the dead-letter topic with
the reason, and hands the batch to ``services.positions_apply``. It emits no events.
"""

from __future__ import annotations

from collections.abc import Sequence

from backoffice.streaming import topics
from backoffice.streaming.consumer import Stage
from backoffice.streaming.envelope import Message, Subscription
from backoffice.streaming.store import Rejection, StageContext, StageResult
from reporting import selectors, services
from reporting.positions import PriceTick, TradeVersion, price_tick, trade_version
from reporting.selectors import FxTable

FX_RATE_MISSING = "FxRateMissing"
UNKNOWN_INSTRUMENT = "UnknownInstrument"
CURRENCY_MISMATCH = "CurrencyMismatch"
INVALID_PRICE = "InvalidPrice"

FX_RATE_MISSING_REASON = (
    "no FX rate {currency}/{base} on or before {on}: trade {trade_id} v{version} cannot be"
    " translated to book {book}'s base currency"
)
UNKNOWN_INSTRUMENT_REASON = "price for unknown instrument {isin}"
CURRENCY_MISMATCH_REASON = "price for {isin} is in {currency}, the instrument trades in {expected}"
INVALID_PRICE_REASON = "price for {isin} must be greater than zero, got {price}"


def _trades(
    messages: Sequence[tuple[Message, TradeVersion]], fx: FxTable
) -> tuple[list[TradeVersion], list[Rejection]]:
    kept: list[TradeVersion] = []
    refused: list[Rejection] = []
    for message, trade in messages:
        if trade.live and fx.rate(trade.currency, trade.base_currency, trade.trade_date) is None:
            reason = FX_RATE_MISSING_REASON.format(
                currency=trade.currency,
                base=trade.base_currency,
                on=trade.trade_date,
                trade_id=trade.trade_id,
                version=trade.version,
                book=trade.book,
            )
            refused.append(Rejection(message, FX_RATE_MISSING, reason))
        else:
            kept.append(trade)
    return kept, refused


def _prices(
    messages: Sequence[tuple[Message, PriceTick]],
) -> tuple[list[PriceTick], list[Rejection]]:
    known = selectors.instrument_currencies(tick.isin for _, tick in messages)
    kept: list[PriceTick] = []
    refused: list[Rejection] = []
    for message, tick in messages:
        expected = known.get(tick.isin)
        if expected is None:
            reason = UNKNOWN_INSTRUMENT_REASON.format(isin=tick.isin)
            refused.append(Rejection(message, UNKNOWN_INSTRUMENT, reason))
        elif tick.currency != expected:
            reason = CURRENCY_MISMATCH_REASON.format(
                isin=tick.isin, currency=tick.currency, expected=expected
            )
            refused.append(Rejection(message, CURRENCY_MISMATCH, reason))
        elif tick.price <= 0:
            reason = INVALID_PRICE_REASON.format(isin=tick.isin, price=tick.price)
            refused.append(Rejection(message, INVALID_PRICE, reason))
        else:
            kept.append(tick)
    return kept, refused


def handle(messages: Sequence[Message], ctx: StageContext) -> StageResult:
    """One batch: refuse what cannot be booked, apply the rest in bulk (no events emitted)."""
    trade_messages = [
        (m, trade_version(m.payload)) for m in messages if m.topic == topics.TRADES_VALIDATED
    ]
    price_messages = [
        (m, price_tick(m.payload)) for m in messages if m.topic == topics.MARKETDATA_PRICES
    ]
    fx = FxTable()
    trades, refused_trades = _trades(trade_messages, fx)
    prices, refused_prices = _prices(price_messages) if price_messages else ([], [])
    services.positions_apply(trades=trades, prices=prices, fx=fx, now=ctx.now)
    return StageResult(rejections=[*refused_trades, *refused_prices])


STAGE = Stage(
    "reporting",
    [
        Subscription(topics.TRADES_VALIDATED, "trades.validated"),
        Subscription(topics.MARKETDATA_PRICES, "marketdata.prices"),
    ],
    handle,
)
