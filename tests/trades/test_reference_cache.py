"""Reference data is cached per process and re-read as soon as it changes (real PostgreSQL).

The key is the committed ``trades_reference_version``, which every statement on a reference
table sets anew (migration 0005): these tests change reference data in each way the product
does and check that the next read sees it, and that a rolled-back change is never served.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from settlement.reference import settlement_reference
from trades.models import Counterparty, Instrument
from trades.selectors import capture_reference, reference_snapshot


@pytest.fixture
def reference(db: None) -> None:
    call_command("load_reference_data", verbosity=0)


def _new_instrument(isin: str) -> Instrument:
    copy = Instrument.objects.order_by("isin").first()
    assert copy is not None
    copy.pk, copy.isin, copy.symbol = None, isin, isin[-6:]
    copy.save()
    return copy


class _Rollback(Exception):
    pass


def test_reads_share_one_snapshot_until_the_data_changes(reference: None) -> None:
    first = reference_snapshot()
    assert reference_snapshot() is first  # no change: the same object, no reload
    _new_instrument("US0000000001")
    second = reference_snapshot()
    assert second is not first
    assert "US0000000001" in second.instruments
    assert "US0000000001" in capture_reference().instruments
    assert "US0000000001" in settlement_reference().securities


def test_an_update_a_delete_and_raw_sql_are_each_seen_by_the_next_read(reference: None) -> None:
    _new_instrument("US0000000002")
    Counterparty.objects.filter(code="CP-NRTH").update(credit_limit=Decimal("1000"))
    assert reference_snapshot().counterparties["CP-NRTH"].credit_limit == Decimal("1000")

    Counterparty.objects.filter(code="CP-NRTH").update(credit_limit=Decimal("5000"))
    assert reference_snapshot().counterparties["CP-NRTH"].credit_limit == Decimal("5000")

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE trades_instrument SET currency = 'EUR' WHERE isin = %s", ["US0000000002"]
        )
    assert capture_reference().instruments["US0000000002"].currency == "EUR"

    Instrument.objects.filter(isin="US0000000002").delete()
    assert "US0000000002" not in reference_snapshot().instruments
    assert "US0000000002" not in settlement_reference().securities


def _change_read_and_roll_back(code: str) -> None:
    with transaction.atomic():
        Counterparty.objects.filter(code=code).update(credit_limit=Decimal("9"))
        # read inside the change's own transaction: it sees (and caches) the uncommitted value
        assert reference_snapshot().counterparties[code].credit_limit == Decimal("9")
        raise _Rollback


def test_a_rolled_back_change_is_never_served_from_the_cache(reference: None) -> None:
    Counterparty.objects.filter(code="CP-NRTH").update(credit_limit=Decimal("1000"))
    with pytest.raises(_Rollback):
        _change_read_and_roll_back("CP-NRTH")
    assert reference_snapshot().counterparties["CP-NRTH"].credit_limit == Decimal("1000")
