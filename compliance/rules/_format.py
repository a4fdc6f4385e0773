"""Number formatting for detail sentences; display only, decisions never use these strings."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

_CENT = Decimal("0.01")


def num(value: Decimal) -> str:
    """Thousands separators, at least two decimals, never hiding a significant digit."""
    # Full precision beyond two places avoids "1,000,000.00 exceeds 1,000,000.00" when the real
    # figure is 1,000,000.004.
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        normal = normal.quantize(_CENT)
    return f"{normal:,f}"


def money(value: Decimal, currency: str) -> str:
    return f"{num(value)} {currency}"


def qty(value: Decimal) -> str:
    """Thousands separators and only the decimals the value has (100, 0.5, 1,250.125)."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        normal = normal.quantize(Decimal(1))
    return f"{normal:,f}"


def pct(fraction: Decimal, rounding: str = ROUND_HALF_EVEN) -> str:
    return f"{(fraction * 100).quantize(_CENT, rounding=rounding):f} %"


def seconds(delta: timedelta) -> str:
    # Integer microseconds keep the arithmetic in Decimal; timedelta.total_seconds() is a float.
    micros = Decimal(abs(delta) // timedelta(microseconds=1))
    return f"{qty(micros / 1_000_000)} s"
