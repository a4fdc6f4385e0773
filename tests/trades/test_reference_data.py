"""Reference data: the loader, the files it loads, the database's guards and the selectors."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from backoffice.streaming.envelope import Subscription, decode
from backoffice.streaming.models import DeadLetter
from backoffice.streaming.schemas import registry
from backoffice.streaming.store import Record, apply_batch
from settlement.fails import InstrumentClass
from tests.streaming.helpers import outbox_events
from trades.calendar import (
    CALENDAR_NOT_COVERED,
    CALENDAR_NOT_LOADED,
    NO_COVERAGE,
    CalendarNotCoveredError,
)
from trades.capture import UNCOVERED_DATE
from trades.management.commands.create_demo_users import DEMO_USERS
from trades.management.commands.load_reference_data import (
    BAD_FILE,
    DATA_DIR,
    UNKNOWN_REFERENCE,
    reference_data_load,
)
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
    TradeVersion,
)
from trades.selectors import (
    FX_RATE_MISSING,
    UNKNOWN_CALENDAR,
    FxRateMissingError,
    UnknownCalendarError,
    fx_rate,
    fx_rates_on,
    market_calendar,
    reference_cache_clear,
    reference_snapshot,
)
from trades.simulator import isin_is_valid
from trades.stage import handle_capture

pytestmark = pytest.mark.django_db

# What holidays.json declares complete, for both calendars.
COVERED = (date(2025, 1, 1), date(2028, 12, 31))


@pytest.fixture
def loaded():
    return reference_data_load()


def test_the_loader_meets_the_reference_data_minimums(loaded):
    assert Instrument.objects.count() >= 50
    assert Account.objects.count() >= 20
    assert Book.objects.count() >= 3
    assert Account.objects.values("book").distinct().count() >= 3
    assert Counterparty.objects.count() >= 10
    assert StandingSettlementInstruction.objects.count() >= 10
    assert set(Instrument.objects.values_list("asset_class", flat=True)) == {
        "EQUITY",
        "ETF",
        "BOND",
    }
    assert {"INACTIVE", "SUSPENDED"} <= set(Instrument.objects.values_list("status", flat=True))
    cycles = dict(Market.objects.values_list("mic", "settlement_cycle"))
    assert cycles["XNYS"] == cycles["XNAS"] == 1
    assert cycles["XETR"] == cycles["XPAR"] == 2
    for code in ("NYSE", "TARGET2"):
        years = {
            d.year
            for d in Holiday.objects.filter(calendar_code=code).values_list("date", flat=True)
        }
        assert years == {2025, 2026, 2027, 2028}, code
    pairs = set(FxRate.objects.values_list("base_currency", "quote_currency"))
    currencies = {c for pair in pairs for c in pair}
    assert {"USD", "EUR", "GBP", "JPY", "CHF"} <= currencies
    assert FxRate.objects.values("as_of").distinct().count() > 250
    assert loaded["instruments"].created == Instrument.objects.count()


def test_a_second_load_changes_nothing(loaded):
    out = io.StringIO()
    call_command("load_reference_data", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(loaded) == 9
    assert all("(0 created, 0 updated" in line for line in lines), lines
    again = reference_data_load()
    assert all(c.created == c.updated == 0 for c in again.values())
    assert {k: c.unchanged for k, c in again.items()} == {k: c.total for k, c in loaded.items()}


def test_a_changed_file_updates_only_the_changed_row(loaded, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "instruments.json"
    content = json.loads(path.read_text())
    content["instruments"][0]["reference_price"] = "1.23"
    isin = content["instruments"][0]["isin"]
    path.write_text(json.dumps(content))

    counts = reference_data_load(data_dir=data)

    assert (counts["instruments"].created, counts["instruments"].updated) == (0, 1)
    assert sum(c.updated + c.created for c in counts.values()) == 1
    assert Instrument.objects.get(isin=isin).reference_price == Decimal("1.23")


def test_every_isin_has_a_valid_check_digit(loaded):
    isins = list(Instrument.objects.values_list("isin", flat=True))
    assert [i for i in isins if not isin_is_valid(i)] == []


def test_every_lei_has_valid_iso_7064_check_digits(loaded):
    for lei in Counterparty.objects.values_list("lei", flat=True):
        assert len(lei) == 20
        assert int("".join(str(int(c, 36)) for c in lei)) % 97 == 1, lei


def test_every_reference_price_is_on_tick_and_in_the_instrument_currency_of_its_market(loaded):
    for instrument in Instrument.objects.select_related("market"):
        assert instrument.reference_price % instrument.tick_size == 0, instrument
        assert instrument.currency == ("USD" if instrument.market.country == "US" else "EUR")


def test_every_account_book_has_a_base_currency_and_a_pnl_method(loaded):
    for account in Account.objects.select_related("book"):
        assert account.book.base_currency in {"USD", "EUR"}
        assert account.book.pnl_method in {"FIFO", "AVERAGE"}
    assert set(Book.objects.values_list("pnl_method", flat=True)) == {"FIFO", "AVERAGE"}


def test_every_counterparty_has_a_settlement_instruction_for_each_market(loaded):
    markets = set(Market.objects.values_list("mic", flat=True))
    for counterparty in Counterparty.objects.prefetch_related("ssis__market"):
        assert {s.market.mic for s in counterparty.ssis.all()} == markets, counterparty


def test_csdr_classes_are_the_ones_settlement_prices_penalties_for():
    assert set(Instrument.CsdrClass.values) == {c.value for c in InstrumentClass}


@pytest.mark.parametrize(
    ("model", "values"),
    [
        (Instrument, {"tick_size": Decimal(0)}),
        (Instrument, {"status": "DELISTED"}),
        (Instrument, {"isin": "us0378331005"}),
        (Counterparty, {"credit_limit": Decimal("-1")}),
        (Counterparty, {"lei": "TOO-SHORT"}),
        (Book, {"pnl_method": "LIFO"}),
        (Account, {"status": "FROZEN"}),
        (FxRate, {"rate": Decimal(0)}),
        (StandingSettlementInstruction, {"custodian_bic": "NOTABIC"}),
        (Market, {"settlement_cycle": 9}),
        (CalendarCoverage, {"first_day": date(2029, 1, 1)}),
    ],
)
def test_the_database_refuses_values_that_break_an_invariant(loaded, model, values):
    row = model.objects.order_by("pk")[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=row.pk).update(**values)


def test_the_database_refuses_a_second_ssi_for_the_same_market_and_currency(loaded):
    ssi = StandingSettlementInstruction.objects.order_by("pk")[0]
    ssi.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        ssi.save()


def test_a_trade_the_day_before_thanksgiving_2026_settles_the_friday_after(loaded):
    calendar = market_calendar("NYSE")
    assert calendar.settlement_cycle == 1
    assert calendar.settlement_date(date(2026, 11, 25)) == date(2026, 11, 27)


def test_eu_trades_settle_t_plus_2_around_the_target2_easter_closing(loaded):
    calendar = market_calendar("TARGET2")
    assert calendar.settlement_cycle == 2
    assert calendar.settlement_date(date(2026, 4, 2)) == date(2026, 4, 8)


def test_an_unknown_calendar_is_refused_with_its_name(loaded):
    with pytest.raises(UnknownCalendarError) as error:
        market_calendar("XLON")
    assert str(error.value) == UNKNOWN_CALENDAR.format(code="XLON")


def test_loading_gives_every_calendar_its_coverage(loaded, django_assert_num_queries):
    rows = CalendarCoverage.objects.values_list("calendar_code", "first_day", "last_day")
    assert {code: (first, last) for code, first, last in rows} == {
        "NYSE": COVERED,
        "TARGET2": COVERED,
    }
    snapshot = reference_snapshot()
    assert {mic: c.covers for mic, c in snapshot.calendars.items()} == dict.fromkeys(
        snapshot.markets, COVERED
    )
    # the business calendar is read on every page: coverage costs it no extra query
    with django_assert_num_queries(2):
        assert market_calendar("NYSE").covers == COVERED
    assert market_calendar("TARGET2").covers == COVERED


def test_the_2028_holidays_are_loaded(loaded):
    nyse, target2 = market_calendar("NYSE"), market_calendar("TARGET2")
    # Fri 31 Dec 2027 stays open (New Year's Day 2028 is a Saturday); Mon 3 Jan follows.
    assert nyse.settlement_date(date(2027, 12, 30)) == date(2027, 12, 31)
    assert nyse.settlement_date(date(2027, 12, 31)) == date(2028, 1, 3)
    # Wed 22 Nov 2028, Thanksgiving Thu 23 -> Fri 24.
    assert nyse.settlement_date(date(2028, 11, 22)) == date(2028, 11, 24)
    # T+2 from Thu 13 Apr 2028: Good Friday, weekend, Easter Monday closed -> Tue 18, Wed 19.
    assert target2.settlement_date(date(2028, 4, 13)) == date(2028, 4, 19)
    # T+2 from Fri 22 Dec 2028: 25 and 26 Dec closed -> Wed 27, Thu 28.
    assert target2.settlement_date(date(2028, 12, 22)) == date(2028, 12, 28)


def test_a_date_past_the_loaded_coverage_is_refused_with_what_to_load(loaded):
    # Fri 29 Dec 2028, T+1: Mon 1 Jan 2029 cannot be judged from the loaded holidays.
    with pytest.raises(CalendarNotCoveredError) as error:
        market_calendar("NYSE").settlement_date(date(2028, 12, 29))
    assert str(error.value) == CALENDAR_NOT_COVERED.format(
        calendar="NYSE", first=COVERED[0], last=COVERED[1], day=date(2029, 1, 1), year=2029
    )


def test_a_calendar_without_coverage_refuses_every_date(loaded):
    CalendarCoverage.objects.filter(calendar_code="TARGET2").delete()
    calendar = market_calendar("TARGET2")
    assert calendar.covers == NO_COVERAGE
    assert reference_snapshot().calendars["XETR"].covers == NO_COVERAGE
    with pytest.raises(CalendarNotCoveredError) as error:
        calendar.is_business_day(date(2026, 4, 3))
    assert str(error.value) == CALENDAR_NOT_LOADED.format(calendar="TARGET2", day=date(2026, 4, 3))


def holidays_file_with(tmp_path, change):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "holidays.json"
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))
    return data, path


def test_a_calendar_without_coverage_in_the_file_is_refused_and_nothing_is_loaded(tmp_path):
    data, path = holidays_file_with(tmp_path, lambda c: c["coverage"].pop("TARGET2"))
    with pytest.raises(CommandError) as error:
        reference_data_load(data_dir=data)
    assert str(error.value) == UNKNOWN_REFERENCE.format(
        path=path, what="coverage of calendar", code="TARGET2"
    )
    assert Market.objects.count() == Holiday.objects.count() == 0


def test_a_coverage_that_ends_before_it_starts_is_refused_by_the_loader(tmp_path):
    def reverse(content):
        content["coverage"]["NYSE"] = {"first_day": "2028-12-31", "last_day": "2025-01-01"}

    data, path = holidays_file_with(tmp_path, reverse)
    with pytest.raises(CommandError) as error:
        reference_data_load(data_dir=data)
    assert str(error.value) == BAD_FILE.format(
        path=path, problem="coverage of NYSE ends on 2025-01-01, before it starts on 2028-12-31"
    )
    assert CalendarCoverage.objects.count() == 0


CAPTURED_AT = datetime(2028, 12, 29, 16, 0, tzinfo=UTC)
EXECUTED = Subscription("trades.executed", "trades.executed", enveloped=False)


def executed(trade_id, day, **overrides):
    return {
        "trade_id": trade_id,
        "trade_version": 1,
        "action": "NEW",
        "account": "ACC-0001",
        "counterparty": "CP-NRTH",
        "instrument": "US0378331005",  # XNAS: the NYSE calendar, T+1
        "side": "BUY",
        "quantity": "100",
        "price": "231.40",
        "currency": "USD",
        "trade_date": day.isoformat(),
        "trade_time": f"{day.isoformat()}T15:00:00Z",
        "venue": "XNAS",
        "trader": "jdoe",
        **overrides,
    }


def capture(*payloads):
    records = []
    for offset, payload in enumerate(payloads):
        value = json.dumps(payload).encode()
        message = decode(
            subscription=EXECUTED,
            partition=0,
            offset=offset,
            key=b"ACC-0001",
            value=value,
            headers=[],
            registry=registry(),
        )
        records.append(
            Record("trades.executed", 0, offset, b"ACC-0001", value, [], message=message)
        )
    return apply_batch(
        stage="capture",
        group="capture-test",
        handler=handle_capture,
        records=records,
        now=CAPTURED_AT,
    )


def test_a_trade_whose_settle_date_falls_past_coverage_is_dead_lettered_with_what_to_load(
    loaded,
):
    outcome = capture(
        executed("T-INSIDE", date(2028, 12, 28)),  # Thu: T+1 is Fri 29 Dec, inside coverage
        executed("T-PAST", date(2028, 12, 29)),  # Fri: T+1 needs Mon 1 Jan 2029
    )

    assert (outcome.applied, outcome.dead_lettered) == (1, 1)
    letter = DeadLetter.objects.get()
    assert (letter.error_class, letter.reason) == (
        UNCOVERED_DATE,
        CALENDAR_NOT_COVERED.format(
            calendar="NYSE", first=COVERED[0], last=COVERED[1], day=date(2029, 1, 1), year=2029
        ),
    )
    assert list(TradeVersion.objects.values_list("trade_id", "settle_date")) == [
        ("T-INSIDE", date(2028, 12, 29))
    ]
    assert len(outbox_events("trades.captured")) == 1


def test_a_trade_past_coverage_that_carries_its_settle_date_is_captured(loaded):
    # Capture computes nothing from the calendar then; compliance judges the given date.
    outcome = capture(executed("T-GIVEN", date(2028, 12, 29), settle_date="2029-01-02"))
    assert (outcome.applied, outcome.dead_lettered) == (1, 0)
    assert TradeVersion.objects.get().settle_date == date(2029, 1, 2)


def test_the_fx_rate_is_the_latest_on_or_before_the_date(loaded):
    friday = fx_rate("EUR", "USD", date(2026, 11, 20))
    stored = FxRate.objects.get(as_of=date(2026, 11, 20), base_currency="EUR", quote_currency="USD")
    assert friday == stored.rate
    assert fx_rate("EUR", "USD", date(2026, 11, 22)) == friday  # Sunday: Friday's close
    assert fx_rate("EUR", "USD", date(2030, 1, 1)) == friday


def test_the_fx_rate_of_a_reversed_pair_is_the_inverse_rounded_to_ten_places(loaded):
    as_of = date(2026, 6, 1)
    usd_eur = fx_rate("USD", "EUR", as_of)
    assert usd_eur == (Decimal(1) / fx_rate("EUR", "USD", as_of)).quantize(Decimal("1E-10"))
    assert abs(usd_eur * fx_rate("EUR", "USD", as_of) - 1) < Decimal("1E-9")


def test_the_same_currency_converts_at_exactly_one():
    assert fx_rate("JPY", "JPY", date(2026, 1, 1)) == Decimal(1)


def test_a_missing_fx_rate_is_refused_with_a_clear_message(loaded):
    before = date(2024, 12, 31)
    with pytest.raises(FxRateMissingError) as error:
        fx_rate("EUR", "USD", before)
    assert str(error.value) == FX_RATE_MISSING.format(base="EUR", quote="USD", as_of=before)
    with pytest.raises(FxRateMissingError):
        fx_rate("EUR", "SEK", date(2026, 1, 1))


def test_fx_rates_on_a_date_give_every_pair_at_its_latest_close(loaded):
    rates = fx_rates_on(date(2026, 11, 22))
    assert len(rates) == len(set(FxRate.objects.values_list("base_currency", "quote_currency")))
    assert rates["EUR", "USD"] == fx_rate("EUR", "USD", date(2026, 11, 20))


def test_the_reference_snapshot_is_seven_queries_and_then_plain_lookups(
    loaded, django_assert_num_queries
):
    reference_cache_clear()
    with django_assert_num_queries(1 + 7):  # the reference version, then the data
        snapshot = reference_snapshot()
    with django_assert_num_queries(1):  # unchanged since: the version alone
        assert reference_snapshot() is snapshot
    with django_assert_num_queries(0):
        apple = snapshot.instruments["US0378331005"]
        assert apple.market.mic == "XNAS"
        account = snapshot.accounts["ACC-0001"]
        assert account.book.base_currency == "USD"
        ssi = snapshot.ssis["CP-NRTH", "XETR", "EUR"]
        assert ssi.counterparty.code == "CP-NRTH"
        assert ssi.market.calendar_code == "TARGET2"
        assert snapshot.counterparties["CP-NRTH"].lei == ssi.counterparty.lei
        assert snapshot.markets["XPAR"].settlement_cycle == 2
        assert snapshot.calendars["XNYS"].settlement_date(date(2026, 11, 25)) == date(2026, 11, 27)
    with pytest.raises(TypeError):
        snapshot.instruments["XX"] = apple  # type: ignore[index]


def test_demo_users_are_created_once_and_log_in_with_their_documented_passwords(settings):
    # a fast hasher: what is under test is idempotence, not PBKDF2
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("create_demo_users", stdout=io.StringIO())
    hashes = dict(User.objects.values_list("username", "password"))
    out = io.StringIO()
    call_command("create_demo_users", stdout=out)

    assert dict(User.objects.values_list("username", "password")) == hashes  # untouched
    assert "demo-analyst" in out.getvalue()
    for demo in DEMO_USERS:
        user = authenticate(username=demo.username, password=f"demo-{demo.username}")
        assert user is not None, demo.username
        assert [g.name for g in user.groups.all()] == [demo.group]
        assert user.is_superuser == user.is_staff == (demo.username == "admin")
    groups = {(u.username, u.groups.get().name) for u in User.objects.all()}
    assert groups == {
        ("analyst", "operations"),
        ("approver", "approver"),
        ("viewer", "viewer"),
        ("admin", "admin"),
    }


@pytest.mark.parametrize(
    "model",
    [
        Market,
        Holiday,
        CalendarCoverage,
        Instrument,
        Book,
        Account,
        Counterparty,
        StandingSettlementInstruction,
        FxRate,
    ],
)
def test_every_reference_table_has_a_searchable_admin_page(loaded, admin_client, model):
    meta = model._meta
    url = f"/admin/{meta.app_label}/{meta.model_name}/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "US"}).status_code == 200
    change = admin_client.get(f"{url}{model.objects.order_by('pk')[0].pk}/change/")
    assert change.status_code == 200
