"""``manage.py load_reference_data``: upsert the reference data files in ``trades/data/``.

Every table is matched on its natural key (MIC, ISIN, account code, ...): missing rows are created,
rows whose values differ are updated, and everything else is left untouched, all in one
transaction. Rows that are absent from the files are never deleted, because trades may refer to
them. Running it twice in a row changes nothing the second time.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction

from backoffice.streaming.command import require_services
from trades.models import (
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
from trades.simulator import isin_is_valid

DATA_DIR = Path(__file__).resolve().parents[2] / "data"

BAD_FILE = "reference data file {path}: {problem}"
UNKNOWN_REFERENCE = "reference data file {path}: {what} {code!r} is not defined"
BAD_ISIN = "reference data file {path}: ISIN {isin} has a wrong check digit"

M = TypeVar("M", bound=models.Model)
Row = dict[str, Any]


@dataclass
class UpsertCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def __str__(self) -> str:
        return (
            f"{self.total} ({self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged)"
        )


def _upsert(model: type[M], key: tuple[str, ...], rows: Iterable[Row]) -> UpsertCounts:
    """Create or update ``rows`` of ``model`` matched on the ``key`` fields, in bulk."""
    existing = {tuple(getattr(obj, f) for f in key): obj for obj in model._default_manager.all()}
    counts = UpsertCounts()
    to_create: list[M] = []
    to_update: list[M] = []
    changed: set[str] = set()
    for row in rows:
        obj = existing.get(tuple(row[f] for f in key))
        if obj is None:
            to_create.append(model(**row))
            continue
        diff = [f for f, value in row.items() if getattr(obj, f) != value]
        for f in diff:
            setattr(obj, f, row[f])
        changed.update(diff)
        if diff:
            to_update.append(obj)
        else:
            counts.unchanged += 1
    model._default_manager.bulk_create(to_create, batch_size=1000)
    if to_update:
        model._default_manager.bulk_update(to_update, sorted(changed), batch_size=1000)
    counts.created, counts.updated = len(to_create), len(to_update)
    return counts


def _read_json(path: Path, key: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))[key]
    except (OSError, ValueError, KeyError) as error:
        raise CommandError(BAD_FILE.format(path=path, problem=error)) from None


def _pk(ids: Mapping[str, int], code: str, *, path: Path, what: str) -> int:
    try:
        return ids[code]
    except KeyError:
        raise CommandError(UNKNOWN_REFERENCE.format(path=path, what=what, code=code)) from None


def _ids(model: type[models.Model], field: str) -> dict[str, int]:
    return dict(model._default_manager.values_list(field, "pk"))


def _load_markets(data_dir: Path) -> dict[str, UpsertCounts]:
    market_rows = _read_json(data_dir / "markets.json", "markets")
    path = data_dir / "holidays.json"
    calendars = _read_json(path, "calendars")
    holidays = [
        {"calendar_code": code, "date": date.fromisoformat(h["date"]), "name": h["name"]}
        for code, days in calendars.items()
        for h in days
    ]
    coverage = _coverage_rows(path, _read_json(path, "coverage"))
    covered = {row["calendar_code"] for row in coverage}
    # A calendar without coverage would refuse every date at run time; say so at load time.
    for code in sorted(set(calendars) | {m["calendar_code"] for m in market_rows}):
        if code not in covered:
            raise CommandError(
                UNKNOWN_REFERENCE.format(path=path, what="coverage of calendar", code=code)
            )
    return {
        "markets": _upsert(Market, ("mic",), market_rows),
        "holidays": _upsert(Holiday, ("calendar_code", "date"), holidays),
        "calendar coverage": _upsert(CalendarCoverage, ("calendar_code",), coverage),
    }


def _coverage_rows(path: Path, coverage: Mapping[str, Any]) -> list[Row]:
    """The file's ``{code: {first_day, last_day}}`` as rows; a window ending before it starts is
    refused."""
    rows = []
    try:
        for code, window in coverage.items():
            first = date.fromisoformat(window["first_day"])
            last = date.fromisoformat(window["last_day"])
            if first > last:
                raise ValueError(f"coverage of {code} ends on {last}, before it starts on {first}")
            rows.append({"calendar_code": code, "first_day": first, "last_day": last})
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise CommandError(BAD_FILE.format(path=path, problem=error)) from None
    return rows


def _load_instruments(data_dir: Path) -> UpsertCounts:
    path = data_dir / "instruments.json"
    market_ids = _ids(Market, "mic")
    rows = []
    for item in _read_json(path, "instruments"):
        if not isin_is_valid(item["isin"]):
            raise CommandError(BAD_ISIN.format(path=path, isin=item["isin"]))
        row = dict(item)
        row["market_id"] = _pk(market_ids, row.pop("market"), path=path, what="market")
        row["tick_size"] = Decimal(row["tick_size"])
        row["reference_price"] = Decimal(row["reference_price"])
        rows.append(row)
    return _upsert(Instrument, ("isin",), rows)


def _load_books_and_accounts(data_dir: Path) -> dict[str, UpsertCounts]:
    books = _upsert(Book, ("code",), _read_json(data_dir / "books.json", "books"))
    path = data_dir / "accounts.json"
    book_ids = _ids(Book, "code")
    rows = []
    for item in _read_json(path, "accounts"):
        row = dict(item)
        row["book_id"] = _pk(book_ids, row.pop("book"), path=path, what="book")
        rows.append(row)
    return {"books": books, "accounts": _upsert(Account, ("code",), rows)}


def _load_counterparties(data_dir: Path) -> dict[str, UpsertCounts]:
    path = data_dir / "counterparties.json"
    items = _read_json(path, "counterparties")
    counterparties = _upsert(
        Counterparty,
        ("code",),
        [
            {k: Decimal(v) if k == "credit_limit" else v for k, v in item.items() if k != "ssis"}
            for item in items
        ],
    )
    counterparty_ids, market_ids = _ids(Counterparty, "code"), _ids(Market, "mic")
    ssis = []
    for item in items:
        for ssi in item["ssis"]:
            row = dict(ssi)
            row["counterparty_id"] = counterparty_ids[item["code"]]
            row["market_id"] = _pk(market_ids, row.pop("market"), path=path, what="market")
            row["effective_from"] = date.fromisoformat(row["effective_from"])
            ssis.append(row)
    return {
        "counterparties": counterparties,
        "settlement instructions": _upsert(
            StandingSettlementInstruction, ("counterparty_id", "market_id", "currency"), ssis
        ),
    }


def _load_fx_rates(data_dir: Path) -> UpsertCounts:
    path = data_dir / "fx_rates.csv"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [
                {
                    "as_of": date.fromisoformat(r["as_of"]),
                    "base_currency": r["base_currency"],
                    "quote_currency": r["quote_currency"],
                    "rate": Decimal(r["rate"]),
                }
                for r in csv.DictReader(handle)
            ]
    except (OSError, ValueError, KeyError) as error:
        raise CommandError(BAD_FILE.format(path=path, problem=error)) from None
    return _upsert(FxRate, ("as_of", "base_currency", "quote_currency"), rows)


def reference_data_load(*, data_dir: Path = DATA_DIR) -> dict[str, UpsertCounts]:
    """Upsert every reference table from ``data_dir`` in one transaction; return counts per table.

    Guarantee: idempotent — rows are matched on natural keys and only differing values are
    written, so a second run with the same files reports zero created and zero updated. Either
    every table is loaded or, on any error (bad file, unknown market, constraint violation),
    none is.
    """
    with transaction.atomic():
        counts = _load_markets(data_dir)
        counts["instruments"] = _load_instruments(data_dir)
        counts |= _load_books_and_accounts(data_dir)
        counts |= _load_counterparties(data_dir)
        counts["fx rates"] = _load_fx_rates(data_dir)
    return counts


class Command(BaseCommand):
    help = (
        "Load markets, holidays and their coverage, instruments, books, accounts, counterparties,"
        " SSIs, FX rates"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data-dir", type=Path, default=DATA_DIR)

    def handle(self, *args: Any, **options: Any) -> None:
        require_services(kafka=False)
        counts = reference_data_load(data_dir=options["data_dir"])
        width = max(len(name) for name in counts)
        for name, count in counts.items():
            self.stdout.write(f"{name:<{width}}  {count}")
