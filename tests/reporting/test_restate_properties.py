"""Restating from a checkpoint is rebuilding from flat, digit for digit (hypothesis, pure layer).

A small in-memory book drives ``plan``, ``fold_on``, ``resumable`` and ``refold`` the way
``services.positions_apply`` drives them against PostgreSQL, with a checkpoint every 3 fills so
that short random histories cross many of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.pnl import CostMethod, PositionState, fold
from reporting.positions import (
    Checkpoint,
    Head,
    Key,
    PositionMeta,
    StoredTrade,
    TradeVersion,
    accepted,
    fold_on,
    meta_after,
    plan,
    rebuild,
    refold,
    resumable,
    state_to_json,
)

EVERY = 3
T0 = datetime(2024, 12, 20, 14, 0, tzinfo=UTC)
ACCOUNTS = ("ACC-0001", "ACC-0002")
# Mixed case and punctuation: ties on trade_time are broken by trade_id in byte order.
IDS = ("a", "B", "c-1", "C_2", "d", "E", "f.3", "G")


def checkpoint_before(
    checkpoints: Iterable[Checkpoint], point: tuple[datetime, str, int] | None
) -> Checkpoint | None:
    """The latest checkpoint strictly before ``point`` (None: from flat): what
    ``selectors.checkpoints_before`` reads from PostgreSQL."""
    if point is None:
        return None
    before = [c for c in checkpoints if c.meta.last < point]
    return max(before, key=lambda c: c.meta.trade_count, default=None)


class MemoryBook:
    """Positions and checkpoints kept as the service keeps them, in dictionaries."""

    def __init__(self) -> None:
        self.trades: dict[str, TradeVersion] = {}
        self.positions: dict[Key, tuple[PositionState, PositionMeta]] = {}
        self.checkpoints: dict[Key, list[Checkpoint]] = {}
        self.resumed = 0  # restatements that started from a checkpoint

    def live(self, key: Key) -> list[TradeVersion]:
        found = [t for t in self.trades.values() if t.live and t.key == key]
        return sorted(found, key=lambda t: t.replay_key)

    def apply(self, batch: list[TradeVersion]) -> None:
        stored = {
            t.trade_id: StoredTrade(t.version, t.live, t.key, t.replay_key)
            for t in self.trades.values()
        }
        fresh = accepted(batch, stored)
        heads = {k: Head(m.last, m.pnl_method) for k, (_, m) in self.positions.items()}
        todo = plan(fresh, stored, heads)
        self.trades |= {t.trade_id: t for t in fresh}
        for key, fills in todo.append.items():
            held = self.positions.get(key)
            if held is None:
                self.checkpoints[key] = []
            state, meta = held or (PositionState(currency=fills[0].currency), None)
            state, meta, passed = fold_on(state, meta, fills, fills[-1].pnl_method, EVERY)
            assert meta is not None
            self.positions[key] = (state, meta)
            self.checkpoints[key] += passed
        for key, point in todo.restate.items():
            self.restate(key, point)

    def restate(self, key: Key, point: tuple[datetime, str, int] | None) -> None:
        held = self.checkpoints.get(key, [])
        base = checkpoint_before(held, point)
        after = [t for t in self.live(key) if base is None or t.replay_key > base.meta.last]
        if base is not None and not resumable(base, after):
            base, after = None, self.live(key)
        kept = base.meta.trade_count if base is not None else 0
        self.resumed += base is not None
        built, passed = refold(base, after, EVERY)
        self.checkpoints[key] = [c for c in held if c.meta.trade_count <= kept] + passed
        if built is None:
            del self.positions[key]
        else:
            self.positions[key] = built


def version(
    trade_id: str, n: int, action: str, account: str, side: str, qty: int, minute: int, method
) -> TradeVersion:
    return TradeVersion(
        trade_id=trade_id,
        version=n,
        action=action,  # type: ignore[arg-type]
        account=account,
        book="EQ-US",
        base_currency="USD",
        pnl_method=method,
        instrument="US0378331005",
        asset_class="EQUITY",
        currency="USD",
        side=side,  # type: ignore[arg-type]
        quantity=Decimal(qty),
        price=Decimal(100 + minute) + Decimal(n) / 8,
        fees=Decimal(n) / 4,
        trade_date=date(2024, 12, 20) + timedelta(days=minute // 10),
        trade_time=T0 + timedelta(minutes=minute),
    )


@st.composite
def histories(draw: st.DrawFn) -> list[list[TradeVersion]]:
    """Batches of new trades (often late), amends (often moving them), cancels, method flips."""
    held: dict[str, TradeVersion] = {}
    versions: dict[str, int] = {}
    stream: list[TradeVersion] = []
    sides, methods = st.sampled_from(("BUY", "SELL")), st.sampled_from(list(CostMethod))
    for n in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from(("new", "new", "new", "amend", "cancel")))
        if kind == "new" or not held:
            # A method other than FIFO is a book changing method (rare, as in life).
            method = draw(st.sampled_from([CostMethod.FIFO] * 6 + [CostMethod.AVERAGE]))
            trade = version(
                f"{draw(st.sampled_from(IDS))}{n}", 1, "NEW", draw(st.sampled_from(ACCOUNTS)),
                draw(sides), draw(st.integers(1, 9)), draw(st.integers(0, 30)), method,
            )  # fmt: skip
        else:
            old = held[draw(st.sampled_from(sorted(held)))]
            versions[old.trade_id] = number = versions.get(old.trade_id, 1) + 1
            if kind == "cancel":
                trade = replace(old, version=number, action="CANCEL")
            else:
                trade = version(
                    old.trade_id, number, "AMEND", draw(st.sampled_from(ACCOUNTS)), draw(sides),
                    draw(st.integers(1, 9)), draw(st.integers(0, 30)), draw(methods),
                )  # fmt: skip
        if trade.live:
            held[trade.trade_id] = trade
        else:
            held.pop(trade.trade_id, None)
        stream.append(trade)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds) if b > a]


def assert_consistent(book: MemoryBook) -> None:
    keys = {t.key for t in book.trades.values() if t.live}
    assert set(book.positions) == keys
    for key in keys:
        live = book.live(key)
        flat = rebuild(live)
        assert flat is not None
        state, meta = book.positions[key]
        assert state_to_json(state) == state_to_json(flat[0])
        assert state == flat[0]
        assert meta == flat[1]
        counts = [c.meta.trade_count for c in book.checkpoints[key]]
        assert counts == list(range(EVERY, len(live) + 1, EVERY))
        for c in book.checkpoints[key]:
            upto = live[: c.meta.trade_count]
            assert c.method is meta.pnl_method
            assert c.meta == meta_after(None, upto)
            assert c.state == fold(PositionState(currency="USD"), upto, c.method)


@settings(deadline=None, max_examples=300)
@given(batches=histories())
def test_restating_from_a_checkpoint_equals_rebuilding_from_flat(batches):
    book = MemoryBook()
    for batch in batches:
        book.apply(batch)
        assert_consistent(book)


@settings(deadline=None, max_examples=50)
@given(batches=histories())
def test_applying_a_batch_again_changes_nothing(batches):
    book = MemoryBook()
    for batch in batches:
        book.apply(batch)
        before = (dict(book.positions), {k: list(v) for k, v in book.checkpoints.items()})
        book.apply(batch)
        assert (book.positions, book.checkpoints) == before


def test_an_amend_after_many_fills_restates_from_the_checkpoint_before_it():
    book = MemoryBook()
    trades = [
        version(
            f"T{i:02d}", 1, "NEW", "ACC-0001", "BUY" if i % 3 else "SELL", 5, i, CostMethod.FIFO
        )
        for i in range(20)
    ]
    book.apply(trades)
    amended = version("T13", 2, "AMEND", "ACC-0001", "SELL", 7, 13, CostMethod.FIFO)

    book.apply([amended])

    assert book.resumed == 1
    assert_consistent(book)
