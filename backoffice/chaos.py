"""The chaos run behind ``make chaos``: a seeded fault schedule while trades flow, then a check of
the final database against an expectation computed independently from the messages sent.

It runs against its own PostgreSQL cluster and Kafka broker (``scripts/chaos.sh`` sets them up in
``var/chaos``), because it restarts both. Every fault is in ``FAULTS``; the schedule is a pure
function of the seed, so a failing run is replayed with ``--seed``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from backoffice.config import BASE_DIR
from backoffice.streaming.failpoints import CRASH_EXIT_CODE

if TYPE_CHECKING:
    from trades.calendar import MarketCalendar

FAULTS = (
    "kill9",
    "crash_at",
    "park",
    "zombie",
    "broker_restart",
    "postgres_restart",
    "terminate_connections",
    "rebalance_storm",
)


# The places a stage consumer crashes at on purpose (``backoffice/streaming/failpoints.py``): a
# kill -9 lands wherever the process happens to be, mostly waiting on a poll; these land exactly
# between the steps the guarantee rests on.
CRASH_POINTS = (
    "after_poll",
    "mid_effects",
    "after_commit",  # committed, not yet published
    "stage_mid_publish",
    "stage_after_publish",  # published, outbox row not yet deleted
)
# The points around publishing: only a consumer that emits events has something to lose there.
PUBLISH_POINTS = ("after_commit", "stage_mid_publish", "stage_after_publish")


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the first trade is published
    kind: str
    target: str = ""
    point: str = ""  # crash_at: the failpoint, and the hit to crash at (``after_commit=3``)


# A parked consumer stops right after a poll for longer than the run's max.poll.interval.ms
# (10 s, ``manage.py chaos``): the group gives its partitions to a peer, which applies the
# records the parked one still holds; when it wakes it tries to apply them too.
PARK_SECONDS = 15


def schedule(
    seed: int,
    *,
    window: float,
    processes: list[str],
    kills: int = 20,
    crashes: int = 10,
    parks: int = 2,
    emitters: list[str] | None = None,
) -> list[Fault]:
    """The faults of a run, in time order: a pure function of the seed.

    The crashes at failpoints come from a generator of their own, so adding them left the rest
    of every seed's schedule as it was; they fall in the first half of the window, while trades
    flow, and the points around publishing go to ``emitters`` (the consumers that emit events;
    all of them when None).
    """
    rng = random.Random(seed)
    faults = [
        Fault(rng.uniform(0.05, 0.95) * window, "kill9", rng.choice(processes))
        for _ in range(kills)
    ]
    consumers = [p for p in processes if p != "relay"]
    faults += [
        Fault(rng.uniform(0.1, 0.9) * window, "zombie", rng.choice(consumers)),
        Fault(rng.uniform(0.2, 0.8) * window, "broker_restart"),
        Fault(rng.uniform(0.2, 0.8) * window, "postgres_restart"),
        Fault(rng.uniform(0.1, 0.9) * window, "terminate_connections"),
        Fault(rng.uniform(0.1, 0.9) * window, "terminate_connections"),
        Fault(rng.uniform(0.1, 0.9) * window, "rebalance_storm", rng.choice(consumers)),
    ]
    crash_rng = random.Random(f"{seed}/crash_at")
    publishers = [p for p in consumers if emitters is None or p in emitters] or consumers
    for n in range(crashes):
        point = CRASH_POINTS[n % len(CRASH_POINTS)]
        target = crash_rng.choice(publishers if point in PUBLISH_POINTS else consumers)
        at = crash_rng.uniform(0.05, 0.5) * window
        faults.append(Fault(at, "crash_at", target, f"{point}={crash_rng.randint(1, 4)}"))
    if crashes and "relay" in processes:
        at = crash_rng.uniform(0.05, 0.5) * window
        faults.append(
            Fault(at, "crash_at", "relay", f"relay_after_publish={crash_rng.randint(1, 4)}")
        )
    park_rng = random.Random(f"{seed}/park")
    faults += [
        Fault(
            park_rng.uniform(0.05, 0.4) * window,
            "park",
            park_rng.choice(consumers),
            f"after_poll={park_rng.randint(2, 4)}/pause{PARK_SECONDS}",
        )
        for _ in range(parks)
    ]
    return sorted(faults, key=lambda f: f.at)


@dataclass(frozen=True)
class Sent:
    """What was published, as the simulator labelled it (the independent expectation's input)."""

    key: bytes
    value: bytes
    kind: str
    duplicate: bool = False


@dataclass
class Expectation:
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # trade_id -> (version, status)
    versions: int = 0
    evaluated_versions: int = 0  # NEW and AMEND versions: compliance evaluates each once
    dead_letters: int = 0
    duplicates: int = 0


def expect(sent: Iterable[Sent]) -> Expectation:
    """Capture's outcome computed from the sent messages alone (no platform code involved).

    The simulator amends and cancels only live trades and keeps each trade on its account's key,
    so every valid version arrives in order and is captured; a resent copy is refused as a
    duplicate; malformed and invalid messages are dead-lettered.
    """
    expected = Expectation()
    for message in sent:
        if message.duplicate:
            expected.duplicates += 1
            continue
        if message.kind in ("MALFORMED", "INVALID"):
            expected.dead_letters += 1
            continue
        payload = json.loads(message.value)
        expected.versions += 1
        expected.evaluated_versions += payload["action"] != "CANCEL"
        status = "CANCELLED" if payload["action"] == "CANCEL" else "LIVE"
        held = expected.heads.get(payload["trade_id"])
        if held is None or payload["trade_version"] > held[0]:
            expected.heads[payload["trade_id"]] = (payload["trade_version"], status)
    return expected


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def compare(
    expected: Expectation,
    actual_heads: dict[str, tuple[int, str]],
    versions: int,
    duplicate_versions: int,
    dead_letters: int,
    refusals: Counter[str],
) -> list[Check]:
    """The pass/fail table: each line says what was expected and what the database holds."""
    missing = set(expected.heads) - set(actual_heads)
    extra = set(actual_heads) - set(expected.heads)
    wrong = {
        t for t in set(expected.heads) & set(actual_heads) if expected.heads[t] != actual_heads[t]
    }
    return [
        Check(
            "no trade lost",
            not missing,
            f"{len(missing)} expected trade(s) missing" + _sample(missing),
        ),
        Check("no unexpected trade", not extra, f"{len(extra)} unexpected" + _sample(extra)),
        Check(
            "every trade at its final version and status",
            not wrong,
            f"{len(wrong)} differ" + _sample(wrong),
        ),
        Check(
            "every version captured once",
            versions == expected.versions and duplicate_versions == 0,
            f"expected {expected.versions}, found {versions} ({duplicate_versions} duplicated)",
        ),
        Check(
            "bad messages dead-lettered once",
            dead_letters == expected.dead_letters,
            f"expected {expected.dead_letters}, found {dead_letters}",
        ),
        Check(
            "resent copies refused as duplicates",
            refusals.get("DUPLICATE", 0) == expected.duplicates
            and sum(refusals.values()) == expected.duplicates,
            f"expected {expected.duplicates} DUPLICATE, found {dict(refusals)}",
        ),
    ]


def sent_versions(sent: Iterable[Sent]) -> dict[tuple[str, int], tuple[str, Decimal]]:
    """(trade id, version) -> (side, quantity) of every valid version published."""
    versions: dict[tuple[str, int], tuple[str, Decimal]] = {}
    for message in sent:
        if message.duplicate or message.kind in ("MALFORMED", "INVALID"):
            continue
        payload = json.loads(message.value)
        if payload["action"] != "CANCEL":
            versions[(payload["trade_id"], payload["trade_version"])] = (
                payload["side"],
                Decimal(payload["quantity"]),
            )
    return versions


def expect_in_force(
    sent: Iterable[Sent], verdicts: dict[str, tuple[int | None, str]]
) -> dict[str, tuple[int, str, Decimal]]:
    """Trade id -> (version, side, quantity) that settlement and P&L must each hold exactly once.

    ``verdicts`` is compliance's word on each trade: (last validated version, status). Which
    versions passed the rules is compliance's decision; everything else (sides, quantities, which
    versions exist) comes from the published messages, not from any downstream table.
    """
    versions = sent_versions(sent)
    expected = {}
    for trade_id, (validated, status) in verdicts.items():
        if validated is not None and status != "CANCELLED":
            side, quantity = versions[(trade_id, validated)]
            expected[trade_id] = (validated, side, quantity)
    return expected


def compare_in_force(
    what: str,
    expected: dict[str, tuple[int, str, Decimal]],
    actual: dict[str, list[tuple[int, str, Decimal]]],
) -> Check:
    """One line: every trade in force held once, at its validated version, side and quantity."""
    missing = set(expected) - set(actual)
    extra = set(actual) - set(expected)
    repeated = {t for t, rows in actual.items() if len(rows) > 1}
    wrong = {
        t
        for t in set(expected) & set(actual)
        if len(actual[t]) == 1 and actual[t][0] != expected[t]
    }
    problems = [
        f"{len(missing)} missing" + _sample(missing),
        f"{len(extra)} unexpected" + _sample(extra),
        f"{len(repeated)} held twice" + _sample(repeated),
        f"{len(wrong)} at the wrong version or quantity" + _sample(wrong),
    ]
    return Check(
        f"{what}: every validated trade once, at its version and quantity",
        not (missing or extra or repeated or wrong),
        f"expected {len(expected)}; " + ", ".join(problems),
    )


def _sample(ids: set[str]) -> str:
    return f" (e.g. {', '.join(sorted(ids)[:3])})" if ids else ""


@dataclass(frozen=True)
class PhaseDays:
    """The business days a run touches: the day it trades and the days its trades settle."""

    trade_date: date
    settle_dates: frozenset[date]


def phase_days(trade_date: date, calendars: Mapping[str, MarketCalendar]) -> PhaseDays:
    """Every settle date trades dated ``trade_date`` can have: one T+N per market calendar (the
    simulator dates a whole run on its session day, and amendments keep the dates)."""
    return PhaseDays(
        trade_date, frozenset(c.settlement_date(trade_date) for c in calendars.values())
    )


CUSTODIAN_DAYS = "custodian days: this run's own settle days, none closed before"


def custodian_close(
    phase: PhaseDays, settle_dates: Iterable[date], closed_before: Iterable[date]
) -> tuple[list[date], Check]:
    """The days to close at the custodian, in date order, and the line that says they were ours.

    ``settle_dates`` are the settle dates of this run's obligations, ``closed_before`` the days
    the custodian had closed when the run ended. A day closes once and settles what is due on or
    before it, so a day an earlier run in the same database closed would leave this run's
    instructions due then to settle late, or never: the outcome would depend on the weekday the
    run started (``scripts/chaos.sh`` gives each phase a database of its own for that reason). A
    settle date outside ``phase`` means the trades were not dated as the run intended.
    """
    own = set(settle_dates)
    reused = own & set(closed_before)
    unexpected = own - phase.settle_dates
    problems = []
    if reused:
        problems.append(f"{_days(reused)} already closed by an earlier run in this database")
    if unexpected:
        problems.append(f"{_days(unexpected)} not a settle date of trades dated {phase.trade_date}")
    detail = "; ".join(problems) or f"trades dated {phase.trade_date} settle on {_days(own)}"
    return sorted(own - reused), Check(CUSTODIAN_DAYS, not problems, detail)


def _days(days: set[date]) -> str:
    return ", ".join(d.isoformat() for d in sorted(days)) or "no day"


# Processes that are not ``consume_<stage>``: the relay, and the custodian simulator answering
# settlement instructions (its statuses drive payments).
COMMANDS = {"relay": ["relay_outbox"], "custodian": ["run_custodian_simulator", "--seed", "1"]}


class Fleet:
    """The platform's processes for the run: start, kill -9, stop/continue, scale — and, like a
    process supervisor, restart any that exits on its own (a consumer started while PostgreSQL is
    down says so and exits; systemd or the like would start it again).
    """

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        # Failpoints a process is to crash at, in turn: it runs armed with the first until it
        # has crashed there (a kill -9 in between restarts it armed again), then with the next.
        self.armed: dict[str, list[str]] = {}
        self.parked: dict[str, str] = {}  # a pause the process's next start is armed with
        self.restarts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stopping = False
        self.supervisor = threading.Thread(target=self._supervise, daemon=True)
        self.supervisor.start()

    def _supervise(self) -> None:
        while not self.stopping:
            time.sleep(1)
            with self.lock:
                for name, process in list(self.running.items()):
                    if not self.stopping and process.poll() is not None:
                        if process.returncode == CRASH_EXIT_CODE and self.armed.get(name):
                            self.restarts[f"{name} (crashed at {self.armed[name].pop(0)})"] += 1
                        else:
                            self.restarts[f"{name} (exited {process.returncode})"] += 1
                        self._start(name)

    def start(self, name: str) -> None:
        with self.lock:
            self._start(name)

    def _start(self, name: str) -> None:
        base = name.split("#")[0]
        command = COMMANDS.get(base, [f"consume_{base}"])
        log = (self.log_dir / f"{name.replace('#', '-')}.log").open("ab")
        self.running[name] = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "manage.py"), *command],
            cwd=BASE_DIR,
            env=self._env_for(name),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _env_for(self, name: str) -> dict[str, str]:
        points = [*self.armed.get(name, [])[:1], self.parked.pop(name, "")]
        failpoints = ",".join(p for p in points if p)
        return {**self.env, "FAILPOINTS": failpoints} if failpoints else self.env

    def _kill(self, name: str) -> None:
        process = self.running.get(name)
        if process and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def kill9(self, name: str) -> None:
        with self.lock:
            self._kill(name)
            self.restarts[f"{name} (kill -9)"] += 1
            self._start(name)

    def crash_at(self, name: str, point: str) -> None:
        """Have ``name`` crash at a failpoint (``FAILPOINTS=after_commit=3``): restarted armed
        with it now, or after the crashes it is already armed for. It exits there by itself, and
        the supervisor starts it again, unarmed or armed with the next."""
        with self.lock:
            queue = self.armed.setdefault(name, [])
            queue.append(point)
            if len(queue) > 1:
                return
            self._kill(name)
            self._start(name)

    def park(self, name: str, point: str) -> None:
        """Restart ``name`` armed to pause at a failpoint (``after_poll=2/pause15``), once."""
        with self.lock:
            self._kill(name)
            self.parked[name] = point
            self._start(name)
            self.restarts[f"{name} (parked at {point})"] += 1

    def zombie(self, name: str, seconds: float) -> None:
        """SIGSTOP past the session timeout (the group moves on), then SIGCONT."""
        process = self.running[name]
        os.kill(process.pid, signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(process.pid, signal.SIGCONT)

    def scale(self, stage: str, count: int) -> None:
        with self.lock:
            for n in range(2, 6):
                name = f"{stage}#{n}"
                if n <= count and name not in self.running:
                    self._start(name)
                elif n > count and name in self.running:
                    self.running.pop(name).terminate()

    def stop_all(self) -> None:
        with self.lock:
            self.stopping = True
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
