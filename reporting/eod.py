"""End of day for one business date: P&L snapshots, margin, margin calls.

Everything is rebuilt from the data as of the business date (trade versions traded on or before
it, the close on or before it, the FX rate on or before it), never from the live rows or the
clock, so a second run, or a late one, writes the same figures. ``services.eod_snapshot_create``
is the entry point; this module builds the rows it writes.
"""

from __future__ import annotations

import importlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from backoffice.audit.services import audit_record
from backoffice.money import quantize_money
from reporting import risk, selectors
from reporting.book import booked_fields, value
from reporting.models import MarginCall, MarginSnapshot, PnlSnapshot
from reporting.positions import Key, TradeVersion, mark_for, rebuild
from reporting.selectors import FxTable

log = logging.getLogger("reporting.eod")

PAYMENTS_UNAVAILABLE = (
    "margin call {reference}: settlement.services.payment_create_for_margin_call is not"
    " available, so no payment was created"
)
ZERO = Decimal(0)


def snapshot_rows(
    business_date: date, versions: Mapping[Key, Sequence[TradeVersion]], fx: FxTable, now: datetime
) -> list[PnlSnapshot]:
    """One snapshot per position with a live trade on or before ``business_date``.

    Marked at the instrument's close on or before the date (its last fill price when no price
    was ever published) and translated at the rate on or before the date.
    """
    closes = selectors.closes_as_of(business_date)
    rows: list[PnlSnapshot] = []
    for (account, instrument), live in sorted(versions.items()):
        built = rebuild(live)
        if built is None:
            continue
        state, meta = built
        mark = mark_for(closes.get(instrument), meta)
        figures = value(state, meta, mark, fx, business_date)
        rows.append(
            PnlSnapshot(
                business_date=business_date,
                account=account,
                instrument=instrument,
                **booked_fields(figures, mark, meta),
                valuation_date=business_date,
                trade_count=meta.trade_count,
                created_at=now,
            )
        )
    return rows


def _risk_positions(snapshots: Iterable[PnlSnapshot]) -> list[risk.RiskPosition]:
    return [
        risk.RiskPosition(s.instrument, s.asset_class, s.currency, s.base_market_value)
        for s in snapshots
        if s.quantity != 0
    ]


def _buckets(buckets: Mapping[str, risk.ExposureBucket]) -> dict[str, dict[str, str]]:
    return {k: {"gross": str(b.gross), "net": str(b.net)} for k, b in buckets.items()}


def margin_rows(
    business_date: date, snapshots: Sequence[PnlSnapshot], fx: FxTable, now: datetime
) -> list[MarginSnapshot]:
    """Exposure, margin requirement, equity and call per account (docs/pnl.md, "Margin").

    ``cash = collateral + Σ(base net realized - base cost basis)``: the opening collateral plus
    every trade's cash flow and fees, as if each had settled against the account. So
    ``equity = cash + Σ base market value = collateral + Σ base total P&L``.
    """
    by_account: defaultdict[str, list[PnlSnapshot]] = defaultdict(list)
    for snapshot in snapshots:
        by_account[snapshot.account].append(snapshot)
    held = {s.instrument for s in snapshots if s.quantity != 0}
    history = selectors.close_history(held, business_date)
    collateral = selectors.collateral_by_account()
    rows: list[MarginSnapshot] = []
    for account, own in sorted(by_account.items()):
        base = own[-1].base_currency
        amount, currency = collateral.get(account, (ZERO, base))
        rate = fx.rate(currency, base, business_date)
        if rate is None:
            raise LookupError(f"no FX rate {currency}/{base} for {account}'s collateral")
        posted = quantize_money(amount * rate, base)
        cash = posted + sum((s.base_net_realized - s.base_cost_basis for s in own), ZERO)
        positions = _risk_positions(own)
        result = risk.margin(positions, cash, base, history)
        exposure = risk.exposure(positions, base)
        rows.append(
            MarginSnapshot(
                business_date=business_date,
                account=account,
                book=own[-1].book,
                base_currency=base,
                gross_exposure=exposure.gross,
                net_exposure=exposure.net,
                exposure_by_currency=_buckets(exposure.by_currency),
                exposure_by_asset_class=_buckets(exposure.by_asset_class),
                collateral=posted,
                cash=cash,
                equity=result.equity,
                haircut_requirement=result.haircut_requirement,
                var_99_1d=result.var_99_1d,
                scenario_count=result.scenario_count,
                var_fallback=result.var_fallback,
                binding=result.binding,
                note=result.note[:200],
                requirement=result.requirement,
                excess=result.excess,
                margin_call=result.margin_call,
                created_at=now,
            )
        )
    return rows


def value_date(business_date: date) -> date:
    """A margin call is due the next weekday after the business date it was measured on."""
    day = business_date + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


# The settlement app owns payments; the function may live in the package or its payments module.
PAYMENT_MODULES = ("settlement.services", "settlement.services.payments")


def _payments() -> Callable[..., Any] | None:
    # Imported late and optional: reporting keeps issuing calls when payments are not there.
    # Only a missing module means "not there"; a broken one raises, so the run fails loudly.
    for name in PAYMENT_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name is None or not name.startswith(error.name):
                raise
            continue
        hook: Callable[..., Any] | None = getattr(module, "payment_create_for_margin_call", None)
        if callable(hook):
            return hook
    return None


def margin_calls_issue(
    business_date: date, margins: Sequence[MarginSnapshot], now: datetime
) -> list[MarginCall]:
    """Issue a call for every account in deficit that has none for this date yet.

    Runs under the end-of-day lock of the date, so the existence check cannot race. An issued
    call is never revised or repeated: a rerun that finds a different deficit keeps the call
    (and its payment) as issued.
    """
    issued = set(
        MarginCall.objects.filter(business_date=business_date).values_list("account", flat=True)
    )
    pay = _payments()
    calls: list[MarginCall] = []
    for margin in margins:
        if margin.margin_call <= 0 or margin.account in issued:
            continue
        reference = f"MC-{margin.account}-{business_date:%Y%m%d}"
        due = value_date(business_date)
        payment_id = ""
        if pay is None:
            status = MarginCall.PaymentStatus.NOT_AVAILABLE
            log.warning(PAYMENTS_UNAVAILABLE.format(reference=reference))
        else:
            payment = pay(
                account=margin.account,
                amount=margin.margin_call,
                currency=margin.base_currency,
                value_date=due,
                reference=reference,
                now=now,
            )
            status = MarginCall.PaymentStatus.CREATED
            payment_id = str(getattr(payment, "end_to_end_id", "") or getattr(payment, "pk", ""))
        call = MarginCall.objects.create(
            business_date=business_date,
            account=margin.account,
            amount=margin.margin_call,
            currency=margin.base_currency,
            value_date=due,
            reference=reference,
            payment_status=status,
            payment_reference=payment_id,
            created_at=now,
        )
        audit_record(
            actor=None,
            action="margin_call.issue",
            object_type="reporting.margincall",
            object_id=call.pk,
            at=now,
            after={
                "reference": reference,
                "account": margin.account,
                "amount": margin.margin_call,
                "currency": margin.base_currency,
                "equity": margin.equity,
                "requirement": margin.requirement,
                "payment_status": status,
            },
            reason=f"equity below the margin requirement at the end of {business_date}",
        )
        calls.append(call)
    return calls
