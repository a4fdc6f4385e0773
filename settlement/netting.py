"""Bilateral settlement netting and re-netting (pure: no Django, no I/O).

Sign convention — always from the account's side:

* securities: BUY receives (+quantity), SELL delivers (-quantity);
* cash: BUY pays (-cash_amount), SELL receives (+cash_amount).

Obligations net per ``NettingKey`` (account, counterparty, instrument, settle_date, currency,
payment_type). DvP and FoP never net together: they are different instruction types at the CSD.
An FoP obligation moves no cash, so its ``cash_amount`` must be zero.

A key netting to zero quantity but non-zero cash (bought and sold the same amount at different
prices) yields a cash-only instruction; a key netting to zero quantity and zero cash yields none.

Rounding: an obligation's ``cash_amount`` is a booked consideration, so it must already be at the
currency's minor units (``backoffice.money.quantize_money`` is a no-op on it). Sums of booked
amounts are booked amounts, so netting itself never rounds and conservation is exact.

Re-netting (see ``renet``): each key owns an append-only chain of instruction versions 1, 2, …
with deterministic ids. Only the latest version can be pending. Before anything on the key has
settled, a change re-issues the full net as a new NET version superseding the pending one (or a
CANCEL version when it nets to nothing). Once any version has settled, the settled amounts are
never edited: the new version is a CORRECTING instruction for ``target - settled``.

Partial settlement: a version the custodian settled only in part stays pending for its
remainder. Callers pass what it settled so far (``partially_settled``); those amounts count as
settled, and the version's *remaining* amounts are what must equal the residual for nothing to
be issued. When the key changes, the new version supersedes the remainder (the custodian
withdraws it) and the partial amounts stay settled.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from backoffice.money import quantize_money, quantize_places

ZERO = Decimal(0)
RATIO_PLACES = 4


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class PaymentType(StrEnum):
    DVP = "DVP"
    FOP = "FOP"


class SecuritiesDirection(StrEnum):
    RECEIVE = "RECEIVE"
    DELIVER = "DELIVER"
    NONE = "NONE"  # cash-only instruction


class CashDirection(StrEnum):
    PAY = "PAY"
    RECEIVE = "RECEIVE"
    NONE = "NONE"  # FoP, or DvP whose cash nets to zero


class InstructionKind(StrEnum):
    NET = "NET"  # full net of the key; nothing on the key has settled
    CORRECTING = "CORRECTING"  # difference between the current net and what already settled
    CANCEL = "CANCEL"  # withdraws the pending version; carries zero amounts


@dataclass(frozen=True, order=True)
class NettingKey:
    account: str
    counterparty: str
    instrument: str
    settle_date: date
    currency: str
    payment_type: PaymentType

    def canonical(self) -> str:
        """Stable text form of the key (JSON array), the basis of instruction ids."""
        parts = [
            self.account,
            self.counterparty,
            self.instrument,
            self.settle_date.isoformat(),
            self.currency,
            str(self.payment_type),
        ]
        return json.dumps(parts, separators=(",", ":"))


def chain_id(key: NettingKey) -> str:
    """Deterministic id of a key's instruction chain: the same key always yields the same id."""
    return "SI-" + hashlib.sha256(key.canonical().encode()).hexdigest()[:20]


def instruction_id(key: NettingKey, version: int) -> str:
    """Deterministic id of version ``version`` of the key's instruction chain."""
    return f"{chain_id(key)}-v{version}"


@dataclass(frozen=True)
class Obligation:
    obligation_id: str
    trade_id: str
    trade_version: int
    account: str
    counterparty: str
    instrument: str
    settle_date: date
    currency: str
    side: Side
    quantity: Decimal
    cash_amount: Decimal  # net consideration, positive, booked (already at minor units)
    payment_type: PaymentType

    def __post_init__(self) -> None:
        # Coerce so the ORM layer may pass plain strings; an unknown value raises ValueError.
        object.__setattr__(self, "side", Side(self.side))
        object.__setattr__(self, "payment_type", PaymentType(self.payment_type))
        if self.trade_version < 1:
            raise ValueError(f"{self.obligation_id}: trade_version must be >= 1")
        if not self.quantity.is_finite() or self.quantity <= ZERO:
            raise ValueError(f"{self.obligation_id}: quantity must be positive")
        if not self.cash_amount.is_finite() or self.cash_amount < ZERO:
            raise ValueError(f"{self.obligation_id}: cash_amount must be >= 0")
        if quantize_money(self.cash_amount, self.currency) != self.cash_amount:
            raise ValueError(f"{self.obligation_id}: cash_amount is not at minor units")
        if self.payment_type is PaymentType.FOP and self.cash_amount != ZERO:
            raise ValueError(f"{self.obligation_id}: an FOP obligation moves no cash")

    @property
    def key(self) -> NettingKey:
        return NettingKey(
            self.account,
            self.counterparty,
            self.instrument,
            self.settle_date,
            self.currency,
            self.payment_type,
        )

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side is Side.BUY else -self.quantity

    @property
    def signed_cash(self) -> Decimal:
        return -self.cash_amount if self.side is Side.BUY else self.cash_amount


@dataclass(frozen=True)
class Instruction:
    """One version of a key's settlement instruction; signed amounts per the module convention.

    ``obligation_ids`` are the key's current obligations (all of them, also for a CORRECTING
    version, whose amounts are only the difference). ``supersedes`` names the pending version
    this one replaces, if any. The direction and absolute fields are derived, not inputs.
    """

    instruction_id: str
    key: NettingKey
    version: int
    kind: InstructionKind
    net_quantity: Decimal
    net_cash: Decimal
    obligation_ids: tuple[str, ...]
    supersedes: str | None = None
    securities_direction: SecuritiesDirection = field(init=False)
    quantity: Decimal = field(init=False)
    cash_direction: CashDirection = field(init=False)
    cash_amount: Decimal = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "securities_direction", _securities_direction(self.net_quantity))
        object.__setattr__(self, "quantity", abs(self.net_quantity))
        object.__setattr__(self, "cash_direction", _cash_direction(self.net_cash))
        object.__setattr__(self, "cash_amount", abs(self.net_cash))


def _securities_direction(quantity: Decimal) -> SecuritiesDirection:
    if quantity > ZERO:
        return SecuritiesDirection.RECEIVE
    if quantity < ZERO:
        return SecuritiesDirection.DELIVER
    return SecuritiesDirection.NONE


def _cash_direction(cash: Decimal) -> CashDirection:
    if cash > ZERO:
        return CashDirection.RECEIVE
    if cash < ZERO:
        return CashDirection.PAY
    return CashDirection.NONE


@dataclass(frozen=True)
class NettingRatio:
    settle_date: date
    obligations: int
    instructions: int
    ratio: Decimal | None  # None when every key of the day netted flat (no instruction)


@dataclass(frozen=True)
class _Net:
    quantity: Decimal
    cash: Decimal
    obligation_ids: tuple[str, ...]


def _net_by_key(obligations: Iterable[Obligation]) -> dict[NettingKey, _Net]:
    """Sum signed amounts per key after checking the set is one consistent snapshot."""
    seen: set[str] = set()
    versions: dict[str, int] = {}
    qty: dict[NettingKey, Decimal] = defaultdict(Decimal)
    cash: dict[NettingKey, Decimal] = defaultdict(Decimal)
    ids: dict[NettingKey, list[str]] = defaultdict(list)
    for ob in obligations:
        if ob.obligation_id in seen:
            raise ValueError(f"duplicate obligation id {ob.obligation_id!r}")
        seen.add(ob.obligation_id)
        # Two versions of one trade means a stale amendment leaked in: it would double count.
        if versions.setdefault(ob.trade_id, ob.trade_version) != ob.trade_version:
            raise ValueError(f"trade {ob.trade_id!r} appears in more than one version")
        key = ob.key
        qty[key] += ob.signed_quantity
        cash[key] += ob.signed_cash
        ids[key].append(ob.obligation_id)
    return {k: _Net(qty[k], cash[k], tuple(sorted(ids[k]))) for k in ids}


def net(obligations: Iterable[Obligation]) -> list[Instruction]:
    """Net obligations into version-1 NET instructions, one per key that does not net flat.

    Guarantee: per key, the instruction's signed quantity and cash equal the sums over its
    obligations exactly; keys netting to zero quantity and zero cash produce no instruction;
    the output (ids included) is sorted by key and independent of input order, so netting the
    same set twice is idempotent. Equivalent to ``renet(obligations, [], frozenset())``.
    """
    return renet(obligations, [], frozenset())


def netting_ratio(
    obligations: Iterable[Obligation], instructions: Iterable[Instruction]
) -> list[NettingRatio]:
    """Per settle date: obligations before netting / instructions after, sorted by date.

    Guarantee: counts every obligation and every non-CANCEL instruction given (pass the live
    instructions, e.g. ``net()`` output); the ratio is a reporting metric rounded half-even to
    4 places, and is ``None`` for a day whose obligations all netted flat.
    """
    ob_count: dict[date, int] = defaultdict(int)
    in_count: dict[date, int] = defaultdict(int)
    for ob in obligations:
        ob_count[ob.settle_date] += 1
    for ins in instructions:
        if ins.kind is not InstructionKind.CANCEL:
            in_count[ins.key.settle_date] += 1
    rows = []
    for day in sorted(ob_count.keys() | in_count.keys()):
        o, i = ob_count[day], in_count[day]
        rows.append(NettingRatio(day, o, i, ratio_of(o, i)))
    return rows


def ratio_of(obligations: int, instructions: int) -> Decimal | None:
    """Obligations per instruction, 4 places half-even; ``None`` when there is no instruction."""
    if not instructions:
        return None
    return quantize_places(Decimal(obligations) / Decimal(instructions), RATIO_PLACES)


@dataclass
class _Chain:
    latest: Instruction | None = None
    settled_quantity: Decimal = ZERO
    settled_cash: Decimal = ZERO
    any_settled: bool = False


@dataclass(frozen=True)
class ChainHead:
    """A key's instruction history folded into what re-netting needs: its latest version and
    the signed amounts settled on it so far (settled versions in full, partial ones in part;
    CANCEL versions carry nothing). ``any_settled`` makes the next version a CORRECTING one.

    The settlement stage keeps it by delta (``settlement.services.chains``), so a long chain
    costs one row to re-net, not its whole history.
    """

    latest: Instruction
    settled_quantity: Decimal = ZERO
    settled_cash: Decimal = ZERO
    any_settled: bool = False


Partials = Mapping[str, tuple[Decimal, Decimal]]  # instruction id -> signed (quantity, cash)
_NO_PARTIALS: Partials = MappingProxyType({})


def _chains(
    instructions: Iterable[Instruction],
    settled_ids: frozenset[str],
    partials: Partials = _NO_PARTIALS,
) -> dict[NettingKey, _Chain]:
    """Fold the instruction history into per-key state: latest version and settled totals."""
    chains: dict[NettingKey, _Chain] = defaultdict(_Chain)
    versions: set[tuple[NettingKey, int]] = set()
    for ins in instructions:
        if (ins.key, ins.version) in versions:
            raise ValueError(f"instruction history has version {ins.version} twice for a key")
        versions.add((ins.key, ins.version))
        chain = chains[ins.key]
        if chain.latest is None or ins.version > chain.latest.version:
            chain.latest = ins
        if ins.kind is InstructionKind.CANCEL:
            continue
        if ins.instruction_id in settled_ids:
            chain.settled_quantity += ins.net_quantity
            chain.settled_cash += ins.net_cash
            chain.any_settled = True
        elif ins.instruction_id in partials:
            quantity, cash = partials[ins.instruction_id]
            chain.settled_quantity += quantity
            chain.settled_cash += cash
            chain.any_settled = True
    return chains


def _pending(latest: Instruction | None, settled_ids: frozenset[str]) -> Instruction | None:
    """The latest version when it still has something to settle (not settled, not a CANCEL)."""
    if (
        latest is None
        or latest.kind is InstructionKind.CANCEL
        or latest.instruction_id in settled_ids
    ):
        return None
    return latest


@dataclass(frozen=True)
class ChainTarget:
    """What a key's obligations in force add up to: the signed net, whether its membership
    changed since the latest version (a change the next version must instruct even if the
    amounts are the same), and the obligation ids, which only the pure ``renet`` carries."""

    quantity: Decimal
    cash: Decimal
    members_changed: bool
    obligation_ids: tuple[str, ...] = ()


def next_version(
    key: NettingKey,
    head: ChainHead | None,
    target: ChainTarget,
    settled_instruction_ids: Iterable[str] = (),
    partially_settled: Partials = _NO_PARTIALS,
) -> Instruction | None:
    """The version (if any) that brings one key from its folded history to ``target``.

    The one decision ``renet`` makes per key, from state a caller may keep by delta (a running
    net and a membership flag) instead of the key's obligations. ``settled_instruction_ids`` and
    ``partially_settled`` need to name only the latest version. Guarantee: as ``renet``.
    """
    settled_ids = frozenset(settled_instruction_ids)
    latest = head.latest if head is not None else None
    settled_q = head.settled_quantity if head is not None else ZERO
    settled_c = head.settled_cash if head is not None else ZERO
    residual_q = target.quantity - settled_q
    residual_c = target.cash - settled_c
    pending = _pending(latest, settled_ids)
    flat = residual_q == ZERO and residual_c == ZERO
    if pending is not None and not target.members_changed:
        done_q, done_c = partially_settled.get(pending.instruction_id, (ZERO, ZERO))
        if (pending.net_quantity - done_q, pending.net_cash - done_c) == (residual_q, residual_c):
            return None  # already instructed exactly: idempotent re-run
    if pending is None and flat:
        return None
    if flat:
        kind = InstructionKind.CANCEL
    else:
        any_settled = head is not None and head.any_settled
        kind = InstructionKind.CORRECTING if any_settled else InstructionKind.NET
    version = 1 if latest is None else latest.version + 1
    return Instruction(
        instruction_id=instruction_id(key, version),
        key=key,
        version=version,
        kind=kind,
        net_quantity=residual_q,
        net_cash=residual_c,
        obligation_ids=target.obligation_ids,
        supersedes=pending.instruction_id if pending is not None else None,
    )


def renet(
    current_obligations: Iterable[Obligation],
    existing_instructions: Sequence[Instruction],
    settled_instruction_ids: Iterable[str],
    partially_settled: Partials = _NO_PARTIALS,
) -> list[Instruction]:
    """Bring every key's instructions in line with the current obligations; return new versions.

    ``current_obligations`` is the live snapshot: the latest version of each trade's obligation,
    cancelled trades left out. ``existing_instructions`` is the full history of versions issued
    so far; ``settled_instruction_ids`` those the custodian confirmed settled (ids unknown to the
    history are ignored); ``partially_settled`` the signed amounts settled so far on versions
    settled only in part. Guarantee: after applying the result, for every key
    ``settled amounts + the latest pending version's remainder == net of current obligations``
    exactly;
    settled versions are never edited (a change after settlement is a CORRECTING version for the
    difference); re-running with the result appended returns ``[]``. Output sorted by key.
    """
    settled = frozenset(settled_instruction_ids)
    chains = _chains(existing_instructions, settled, partially_settled)
    targets = _net_by_key(current_obligations)
    empty = _Net(ZERO, ZERO, ())
    issued = []
    for key in sorted(targets.keys() | chains.keys()):
        chain, target = chains.get(key, _Chain()), targets.get(key, empty)
        head = None
        if chain.latest is not None:
            head = ChainHead(
                chain.latest, chain.settled_quantity, chain.settled_cash, chain.any_settled
            )
        pending = _pending(chain.latest, settled)
        changed = pending is not None and pending.obligation_ids != target.obligation_ids
        step = ChainTarget(target.quantity, target.cash, changed, target.obligation_ids)
        ins = next_version(key, head, step, settled, partially_settled)
        if ins is not None:
            issued.append(ins)
    return issued


def signed_totals(
    instructions: Iterable[Instruction],
) -> Mapping[NettingKey, tuple[Decimal, Decimal]]:
    """Sum signed (quantity, cash) per key — a helper for conservation checks and reports."""
    totals: dict[NettingKey, tuple[Decimal, Decimal]] = {}
    for ins in instructions:
        q, c = totals.get(ins.key, (ZERO, ZERO))
        totals[ins.key] = (q + ins.net_quantity, c + ins.net_cash)
    return totals


def pending_instructions(
    instructions: Iterable[Instruction], settled_instruction_ids: Iterable[str]
) -> list[Instruction]:
    """The live, unsettled version of each key (what still has to settle), sorted by key.

    Guarantee: at most one per key — the latest version, when it is neither settled nor a
    CANCEL. Superseded versions are treated as withdrawn at the custodian.
    """
    settled = frozenset(settled_instruction_ids)
    chains = _chains(instructions, settled)
    return [
        c.latest
        for _, c in sorted(chains.items())
        if c.latest is not None
        and c.latest.kind is not InstructionKind.CANCEL
        and c.latest.instruction_id not in settled
    ]
