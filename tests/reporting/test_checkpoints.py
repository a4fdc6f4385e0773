"""Checkpoints through ``positions_apply`` and PostgreSQL: restatements start from the change.

After every change the stored position must equal a rebuild from flat of its live versions, and
every checkpoint the fold of the live fills up to it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reporting.models import Position, PositionCheckpoint
from reporting.pnl import CostMethod, PositionState, fold
from reporting.positions import (
    CHECKPOINT_EVERY,
    PositionMeta,
    TradeVersion,
    meta_after,
    rebuild,
    state_to_json,
    trade_version,
)
from reporting.selectors import FxTable, checkpoints_before, live_versions
from reporting.services import BookResult, positions_apply
from tests.reporting.helpers import AAPL, validated

pytestmark = pytest.mark.django_db

K = CHECKPOINT_EVERY
KEY = ("ACC-0001", AAPL)
T0 = datetime(2024, 12, 20, 14, 30, tzinfo=UTC)
DAY0 = datetime(2024, 12, 20, 22, 0, tzinfo=UTC)


def at(n: int) -> str:
    return (T0 + timedelta(seconds=10 * n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def fill(n: int, **changes: Any) -> TradeVersion:
    """The n-th trade of the day: buys and sells so that lots open, close and flip."""
    side = "SELL" if n % 5 in (1, 3) else "BUY"
    fields: dict[str, Any] = {
        "side": side,
        "quantity": str(10 + n % 7 * 15),
        "price": f"{200 + n % 11}.{n % 100:02d}",
        "fees": f"{n % 4}.25",
        "time": at(n),
    } | changes
    return trade_version(validated(f"T{n:04d}", **fields))


def apply(*trades: TradeVersion, now: datetime = DAY0) -> BookResult:
    return positions_apply(trades=list(trades), prices=[], fx=FxTable(), now=now)


def assert_position_is_the_rebuild_from_flat() -> None:
    live = sorted(live_versions([KEY]).get(KEY, []), key=lambda v: v.replay_key)
    built = rebuild(live)
    assert built is not None
    state, meta = built
    row = Position.objects.get(account=KEY[0], instrument=KEY[1])
    assert row.state == state_to_json(state)
    assert stored_meta(row) == meta
    assert_checkpoints_are_folds_of_the_live_fills(live, meta)


def stored_meta(row: Position | PositionCheckpoint) -> PositionMeta:
    if isinstance(row, Position):
        last = (row.last_trade_time, row.last_trade_id, row.last_trade_version)
        count = row.trade_count
    else:
        last = (row.trade_time, row.trade_id, row.trade_version)
        count = row.trade_count
    return PositionMeta(
        book=row.book,
        base_currency=row.base_currency,
        pnl_method=CostMethod(row.pnl_method),
        asset_class=row.asset_class,
        currency=row.currency,
        last=last,
        last_trade_date=row.last_trade_date,
        last_fill_price=row.last_fill_price,
        trade_count=count,
    )


def assert_checkpoints_are_folds_of_the_live_fills(
    live: list[TradeVersion], meta: PositionMeta
) -> None:
    rows = list(PositionCheckpoint.objects.filter(account=KEY[0], instrument=KEY[1]))
    assert sorted(r.trade_count for r in rows) == list(range(K, len(live) + 1, K))
    for row in rows:
        upto = live[: row.trade_count]
        assert row.fold_method == meta.pnl_method.value
        assert stored_meta(row) == meta_after(None, upto)
        folded = fold(PositionState(currency="USD"), upto, CostMethod(row.fold_method))
        assert row.state == state_to_json(folded)


def written_at() -> dict[int, datetime]:
    return dict(PositionCheckpoint.objects.values_list("trade_count", "created_at"))


@pytest.fixture
def long_position() -> list[TradeVersion]:
    """A position of 3K + 10 fills, appended in batches of 50 as the stage would take them."""
    trades = [fill(n) for n in range(3 * K + 10)]
    for start in range(0, len(trades), 50):
        result = apply(*trades[start : start + 50])
        assert result.restated == 0
    return trades


def test_appending_writes_a_checkpoint_every_k_fills(long_position):
    assert_position_is_the_rebuild_from_flat()
    assert sorted(written_at()) == [K, 2 * K, 3 * K]


def test_each_change_restates_exactly_and_only_from_the_checkpoint_before_it(long_position):
    # An amend of an early trade (just after the first checkpoint): the first one is kept.
    apply(fill(K + 5, version=2, quantity="333", price="199.99"), now=DAY0 + timedelta(hours=1))
    assert_position_is_the_rebuild_from_flat()
    kept = written_at()
    assert kept[K] == DAY0
    assert kept[2 * K] == kept[3 * K] == DAY0 + timedelta(hours=1)

    # A cancel of a middle trade: the first two are kept, the count after it drops by one.
    middle = trade_version(validated("T0140", version=2, action="CANCEL", time=at(140)))
    apply(middle, now=DAY0 + timedelta(hours=2))
    assert_position_is_the_rebuild_from_flat()
    assert written_at()[2 * K] == DAY0 + timedelta(hours=1)
    assert Position.objects.get().trade_count == 3 * K + 9

    # A late trade between two fills already held.
    late = trade_version(validated("L0001", side="SELL", quantity="77", time=at(170)))
    result = apply(late, now=DAY0 + timedelta(hours=3))
    assert (result.appended, result.restated) == (0, 1)
    assert_position_is_the_rebuild_from_flat()
    assert written_at()[2 * K] == DAY0 + timedelta(hours=1)

    # A book that changes method: every fill folds again under the new one, from flat.
    switch = trade_version(validated("M0001", method="AVERAGE", time=at(10_000)))
    apply(switch, now=DAY0 + timedelta(hours=4))
    assert_position_is_the_rebuild_from_flat()
    assert set(written_at().values()) == {DAY0 + timedelta(hours=4)}
    assert Position.objects.get().pnl_method == "AVERAGE"


def test_an_amend_of_the_fill_a_checkpoint_is_after_restates_from_the_one_before(long_position):
    apply(fill(2 * K - 1, version=2, price="150.00"), now=DAY0 + timedelta(hours=1))

    assert_position_is_the_rebuild_from_flat()
    assert written_at() == {
        K: DAY0,
        2 * K: DAY0 + timedelta(hours=1),
        3 * K: DAY0 + timedelta(hours=1),
    }


def test_cancelling_the_last_fill_restores_the_method_of_the_one_before(long_position):
    apply(trade_version(validated("M0001", method="AVERAGE", time=at(10_000))))
    assert Position.objects.get().pnl_method == "AVERAGE"

    apply(trade_version(validated("M0001", version=2, action="CANCEL", time=at(10_000))))

    assert Position.objects.get().pnl_method == "FIFO"
    assert_position_is_the_rebuild_from_flat()


def test_amending_a_trade_to_another_account_restates_both_positions(long_position):
    moved = fill(2 * K + 3, version=2, account="ACC-0002")

    apply(moved)

    assert_position_is_the_rebuild_from_flat()
    other = Position.objects.get(account="ACC-0002")
    assert other.trade_count == 1
    assert not PositionCheckpoint.objects.filter(account="ACC-0002").exists()


def test_a_position_whose_trades_are_all_cancelled_leaves_no_checkpoint():
    trades = [fill(n) for n in range(K + 1)]
    apply(*trades)
    assert PositionCheckpoint.objects.count() == 1

    cancels = [
        trade_version(validated(t.trade_id, version=2, action="CANCEL", time=at(n)))
        for n, t in enumerate(trades)
    ]
    result = apply(*cancels)

    assert result.removed == 1
    assert not Position.objects.exists()
    assert not PositionCheckpoint.objects.exists()


def test_applying_the_same_batch_twice_changes_nothing(long_position):
    batch = [
        fill(7, version=2, quantity="55"),
        trade_version(validated("T0100", version=2, action="CANCEL", time=at(100))),
        trade_version(validated("L0002", side="SELL", quantity="12", time=at(90))),
        fill(3 * K + 10),
    ]
    apply(*batch, now=DAY0 + timedelta(hours=1))
    position = Position.objects.values().get()
    checkpoints = list(PositionCheckpoint.objects.order_by("trade_count").values())

    result = apply(*batch, now=DAY0 + timedelta(hours=2))

    assert result.stale == len(batch)
    assert Position.objects.values().get() == position
    assert list(PositionCheckpoint.objects.order_by("trade_count").values()) == checkpoints
    assert_position_is_the_rebuild_from_flat()


def test_reads_after_a_replay_key_break_ties_on_time_in_byte_order():
    # Same instant: byte order puts "B..." before "a..." (a locale would not).
    same = "2024-12-20T15:00:00Z"
    apply(
        *(trade_version(validated(tid, time=same)) for tid in ("a1", "B1", "b1", "A1")),
        fill(0),
    )
    first = trade_version(validated("B1", time=same))

    after = live_versions([KEY], after={KEY: first.replay_key})[KEY]

    assert sorted(v.trade_id for v in after) == ["a1", "b1"]


def test_the_checkpoint_before_a_replay_key_is_the_latest_strictly_before_it(long_position):
    second = long_position[2 * K - 1]
    just_after = long_position[2 * K]

    assert checkpoints_before({KEY: second.replay_key})[KEY].meta.trade_count == K
    assert checkpoints_before({KEY: just_after.replay_key})[KEY].meta.trade_count == 2 * K
    assert checkpoints_before({KEY: long_position[K - 1].replay_key}) == {}
