"""The worked example of docs/pnl.md, read from the page itself so the two cannot drift apart.

Each table follows an ``<!-- example:<name> -->`` marker; its rows become dicts by header.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from reporting.models import MarginSnapshot, PnlSnapshot, Position
from tests.reporting.helpers import BOOKS, validated

DOC = Path(__file__).resolve().parents[2] / "docs" / "pnl.md"
TEXT_COLUMNS = {"account", "instrument", "base_currency", "currency", "isin"}
# The doc's short column name -> the model field it shows.
FIELD = {"mark": "mark_price"}


@cache
def table(name: str) -> list[dict[str, str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- example:{name} -->") + 1
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, _rule, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def business_date() -> date:
    (day,) = {row["business_date"] for row in table("prices")}
    return date.fromisoformat(day)


def accounts() -> dict[str, dict[str, str]]:
    return {row["account"]: row for row in table("accounts")}


def trade_payloads() -> list[dict[str, Any]]:
    """The trades table as ``trades.validated`` payloads, in arrival order."""
    books = accounts()
    day = business_date().isoformat()
    payloads = []
    for row in sorted(table("trades"), key=lambda r: int(r["#"])):
        account = books[row["account"]]
        assert BOOKS[account["book"]] == (account["base"], account["method"])
        payloads.append(
            validated(
                row["trade_id"],
                version=int(row["version"]),
                action=row["action"],
                account=row["account"],
                book=account["book"],
                instrument=row["instrument"],
                side=row["side"],
                quantity=row["quantity"],
                price=row["price"],
                fees=row["fees"],
                time=f"{day}T{row['time']}:00Z",
                method=account["method"],
            )
        )
    return payloads


def price_payloads() -> list[dict[str, Any]]:
    return [{**row, "source": "DOC"} for row in table("prices")]


def _expected(value: str, column: str) -> Any:
    return value if column in TEXT_COLUMNS else Decimal(value)


def mismatches(name: str, rows: Mapping[Any, Any], key: tuple[str, ...]) -> list[str]:
    """Where the database differs from the doc's ``name`` table (empty when they agree)."""
    problems = []
    for want in table(name):
        ident = tuple(want[k] for k in key)
        row = rows.get(ident)
        if row is None:
            problems.append(f"{ident}: missing")
            continue
        for column, value in want.items():
            got = getattr(row, FIELD.get(column, column))
            if got != _expected(value, column):
                problems.append(f"{ident} {column}: doc {value}, database {got}")
    extra = set(rows) - {tuple(w[k] for k in key) for w in table(name)}
    problems += [f"{ident}: not in the doc" for ident in sorted(extra)]
    return problems


def position_mismatches() -> list[str]:
    rows = {(p.account, p.instrument): p for p in Position.objects.all()}
    return mismatches("positions", rows, ("account", "instrument"))


def snapshot_mismatches(day: date) -> list[str]:
    rows = {(p.account, p.instrument): p for p in PnlSnapshot.objects.filter(business_date=day)}
    return mismatches("positions", rows, ("account", "instrument"))


def margin_mismatches(day: date) -> list[str]:
    rows = {(m.account,): m for m in MarginSnapshot.objects.filter(business_date=day)}
    return mismatches("margin", rows, ("account",))
