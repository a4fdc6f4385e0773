"""Settlement configuration in one place: reconciliation tolerances, penalty rates, simulator rates.

Pure values, no Django. Each is a documented default that operations may change here; nothing
else in the app hard-codes a tolerance or a rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from settlement.fails import DEFAULT_CASH_ANNUAL_RATES, PenaltyRates
from settlement.recon import CASH_ASSET_CLASS, Tolerance, Tolerances

# Quantities must agree exactly (securities settle in whole units); a valuation difference up to
# 0.5 % (0.1 % for bonds, priced tighter) is price noise between two sources, not a break. Cash
# must agree to the cent.
TOLERANCES = Tolerances(
    by_asset_class=MappingProxyType(
        {
            "EQUITY": Tolerance(valuation_rel=Decimal("0.005")),
            "ETF": Tolerance(valuation_rel=Decimal("0.005")),
            "BOND": Tolerance(valuation_rel=Decimal("0.001")),
            CASH_ASSET_CLASS: Tolerance(cash_abs=Decimal("0.01")),
        }
    ),
    default=Tolerance(valuation_rel=Decimal("0.005")),
)

# Calendar days after the as-of date within which a pending instruction can explain a difference.
TIMING_LAG_DAYS = 3

# CSDR defaults from settlement.fails, plus USD for the US markets the reference data trades.
# CSDR itself only prices EU fails; the USD figure (the Federal Reserve primary credit rate) is
# an illustrative value to keep up to date, like the EUR one.
PENALTY_RATES = PenaltyRates(
    cash_annual_rates=MappingProxyType({**DEFAULT_CASH_ANNUAL_RATES, "USD": Decimal("0.0375")})
)

# Bonds are quoted in percent of par: value = quantity x price / 100.
PRICE_DIVISOR = MappingProxyType({"BOND": Decimal(100)})


def unit_price(asset_class: str, quoted: Decimal) -> Decimal:
    """Value of one unit of quantity for a quoted price (bonds are quoted per 100)."""
    return quoted / PRICE_DIVISOR.get(asset_class, Decimal(1))


@dataclass(frozen=True)
class SimulatorRates:
    """Shares of outcomes the custodian simulator draws (each in [0, 1])."""

    ssi_mismatch: Decimal = Decimal("0.02")  # instructions that never match (until replaced)
    fail: Decimal = Decimal("0.05")  # matched instructions that fail on their settle date
    partial: Decimal = Decimal("0.05")  # ... that settle only in part
    partial_fraction: Decimal = Decimal("0.5")  # share of the quantity a partial settles
    recovery: Decimal = Decimal("0.5")  # chance per later day that a fail settles the rest
    discrepancy: Decimal = Decimal("0.05")  # share of statement lines (and accounts) altered

    def __post_init__(self) -> None:
        for name in ("ssi_mismatch", "fail", "partial", "partial_fraction", "recovery"):
            value = getattr(self, name)
            if not Decimal(0) <= value <= Decimal(1):
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if not Decimal(0) <= self.discrepancy <= Decimal(1):
            raise ValueError(f"discrepancy must be between 0 and 1, got {self.discrepancy}")
        if self.fail + self.partial > Decimal(1):
            raise ValueError("fail + partial must not exceed 1")
