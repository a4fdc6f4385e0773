"""Trade and reference-data models (re-exported so Django finds them)."""

from trades.models.reference import (
    Account,
    Book,
    Counterparty,
    FxRate,
    Holiday,
    Instrument,
    Market,
    StandingSettlementInstruction,
)

__all__ = [
    "Account",
    "Book",
    "Counterparty",
    "FxRate",
    "Holiday",
    "Instrument",
    "Market",
    "StandingSettlementInstruction",
]
