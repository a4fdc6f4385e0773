"""Trade and reference-data models (re-exported so Django finds them)."""

from trades.models.api import IdempotencyKey
from trades.models.reference import (
    Account,
    Book,
    CalendarCoverage,
    Counterparty,
    FxRate,
    Holiday,
    Instrument,
    Market,
    StandingSettlementInstruction,
)
from trades.models.trade import Action, Side, Trade, TradeRefusal, TradeVersion

__all__ = [
    "Account",
    "Action",
    "Book",
    "CalendarCoverage",
    "Counterparty",
    "FxRate",
    "Holiday",
    "IdempotencyKey",
    "Instrument",
    "Market",
    "Side",
    "StandingSettlementInstruction",
    "Trade",
    "TradeRefusal",
    "TradeVersion",
]
