"""The one rounding rule for money in the platform.

Amounts are ``Decimal`` from the JSON string on the wire to ``NUMERIC`` in PostgreSQL. Arithmetic
keeps full precision; an amount is quantised to its currency's minor units only where it becomes
a booked figure (consideration, fees, P&L snapshot, payment, penalty), always with
``ROUND_HALF_EVEN`` (banker's rounding, the ISO 4217 / IEEE 754 default, which keeps sums of
many rounded figures unbiased).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

# ISO 4217 minor units for every currency the reference data uses; unknown currencies are refused
# rather than guessed.
MINOR_UNITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "JPY": 0,
    "CAD": 2,
    "AUD": 2,
    "HKD": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
}

# Quantities and prices are stored with fixed scale too (NUMERIC(20, 6) / NUMERIC(20, 8)).
QUANTITY_PLACES = 6
PRICE_PLACES = 8
RATE_PLACES = 10


class UnknownCurrencyError(ValueError):
    """Raised for a currency code the platform has no minor-unit definition for."""


def minor_units(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise UnknownCurrencyError(f"unknown currency {currency!r}") from None


def quantize_money(amount: Decimal, currency: str) -> Decimal:
    """Round ``amount`` to ``currency``'s minor units, half to even."""
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_EVEN)


def quantize_places(amount: Decimal, places: int) -> Decimal:
    """Round to a fixed number of decimal places, half to even (quantities, prices, rates)."""
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
