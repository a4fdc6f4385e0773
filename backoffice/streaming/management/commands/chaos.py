"""``manage.py chaos``: trades flow while a seeded fault schedule runs; then the final state is checked.

Run it through ``scripts/chaos.sh`` (``make chaos``), which gives it its own PostgreSQL and Kafka,
and each phase a fresh database. Every date comes from ``core.clock``: the run trades on the
clock's business day and closes its trades' settle days at the custodian.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection
from kafka import KafkaProducer

from backoffice import bench, chaos
from backoffice.config import BASE_DIR
from backoffice.streaming import topics
from backoffice.streaming.command import require_services
from backoffice.streaming.kafka_admin import ALL_TOPICS, ensure_topics
from backoffice.streaming.lag import group_lag
from backoffice.streaming.relay import pg_connect
from backoffice.streaming.selectors import outbox_backlog
from core import clock
from trades.management.commands.produce_trades import (
    default_start,
    mean_gap,
    simulation_reference,
)
from trades.selectors import reference_snapshot
from trades.simulator import SimConfig, SimReference, TradeSimulator

if TYPE_CHECKING:
    from trades.calendar import MarketCalendar

LAG_DEADLINE_SECONDS = 60


def trade_start(calendars: Mapping[str, MarketCalendar]) -> datetime:
    """The simulated session open a run's trades start from: the clock's business day (the last
    NYSE business day on or before its today, so Saturday and Sunday trade Friday's session)."""
    return default_start(calendars.get("XNYS"), clock.today())


def messages(reference: SimReference, seed: int, count: int, start: datetime) -> list[chaos.Sent]:
    """What a run publishes, in order: the simulator's stream from ``start`` (amendments,
    cancels, malformed and invalid messages among them) with 0.5 % of its trade messages sent
    again later on the same key. A pure function of its arguments."""
    config = SimConfig(
        seed=seed,
        start=start,
        amend_share=0.05,
        cancel_share=0.02,
        malformed_share=0.01,
        invalid_share=0.001,
        mean_gap=mean_gap(count),
    )
    rng = random.Random(f"{seed}/duplicates")
    sent: list[chaos.Sent] = []
    resend: list[chaos.Sent] = []
    for message in TradeSimulator(reference, config).generate(count):
        sent.append(chaos.Sent(message.key.encode(), message.value, str(message.kind)))
        if message.kind in ("NEW", "AMEND", "CANCEL") and rng.random() < 0.005:
            resend.append(
                chaos.Sent(message.key.encode(), message.value, str(message.kind), duplicate=True)
            )
        if resend and rng.random() < 0.01:
            sent.append(resend.pop(0))  # a copy, later on the same key
    return sent + resend


class Command(BaseCommand):
    help = "Chaos run: faults while trades flow, then zero lost / zero duplicated checks"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--trades", type=int, default=100_000)
        parser.add_argument(
            "--rate",
            type=int,
            default=400,
            help="trades published per second: below what this 2-core box carries through every"
            " stage with two consumers each (see docs/performance.md), so lag 0 within 60 s of"
            " the last fault is a fair check",
        )
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--kills", type=int, default=20)
        parser.add_argument(
            "--crashes",
            type=int,
            default=10,
            help="consumers restarted armed to crash at a failpoint (chaos.CRASH_POINTS in turn)",
        )
        parser.add_argument(
            "--parks",
            type=int,
            default=2,
            help="consumers restarted armed to stop after a poll past max.poll.interval.ms",
        )
        parser.add_argument(
            "--consumers",
            type=int,
            default=1,
            help="consumers per stage; with 2+ a zombie's partitions go to another consumer",
        )
        parser.add_argument("--docs", default=str(BASE_DIR / "docs" / "reliability.md"))
        parser.add_argument(
            "--section", default="single", help="which results block of the docs to rewrite"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_services()
        seed = options["seed"]
        if seed is None:
            seed = random.SystemRandom().randrange(100_000)
        self.stdout.write(f"chaos seed {seed} (replay with --seed {seed})")
        ensure_topics(ALL_TOPICS)
        snapshot = reference_snapshot()
        start = trade_start(snapshot.calendars)
        phase = chaos.phase_days(start.date(), snapshot.calendars)
        self.stdout.write(
            f"trading {phase.trade_date}; settling {', '.join(map(str, sorted(phase.settle_dates)))}"
        )
        sent = messages(simulation_reference(snapshot), seed, options["trades"], start)
        stages = [
            s
            for s in ("capture", "compliance", "settlement", "reporting")
            if bench.stage_available(s)
        ]
        fleet = chaos.Fleet(self._env(), Path(os.environ.get("VAR_DIR", BASE_DIR / "var")) / "log")
        custodian = ["custodian"] if "settlement" in stages else []
        for name in ["relay", *stages, *custodian]:
            fleet.start(name)
        for stage in stages:
            fleet.scale(stage, options["consumers"])
        window = len(sent) / options["rate"]
        faults = chaos.schedule(
            seed,
            window=window,
            processes=["relay", *stages],
            kills=options["kills"],
            crashes=options["crashes"],
            parks=options["parks"],
            emitters=[s for s in stages if s != "reporting"],  # the last stage emits nothing
        )
        # Crashes and parks at failpoints do not wait behind the faults that block (a zombie, a
        # storm).
        runners = [
            threading.Thread(target=self._run_faults, args=(part, fleet), daemon=True)
            for part in (
                [f for f in faults if f.kind not in ("crash_at", "park")],
                [f for f in faults if f.kind in ("crash_at", "park")],
            )
        ]
        started = time.monotonic()
        for runner in runners:
            runner.start()
        closed: list[chaos.Check] = []
        try:
            self._publish(sent, options["rate"])
            for runner in runners:
                runner.join()
            last_fault = time.monotonic()
            caught_up = self._wait_for_lag_zero(last_fault)
            if custodian:
                closed.append(self._close_custodian_days(f"SIM{seed}-%", phase))
        finally:
            fleet.stop_all()
        checks = self._checks(seed, sent, caught_up) + closed
        self._report(seed, options, checks, fleet, faults, time.monotonic() - started)
        if not all(c.passed for c in checks):
            raise CommandError(f"chaos run FAILED (seed {seed})")

    def _close_custodian_days(self, prefix: str, phase: chaos.PhaseDays) -> chaos.Check:
        """End of day at the custodian for every date this run's trades settle on: it settles (or
        fails) what it holds and the statuses flow back through settlement into payments. The
        line returned says whether those days were this run's alone (``chaos.custodian_close``)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT settle_date FROM settlement_obligation WHERE trade_id LIKE %s",
                [prefix],
            )
            own = [row[0] for row in cursor.fetchall()]
            cursor.execute("SELECT business_date FROM settlement_custodianday")
            closed_before = [row[0] for row in cursor.fetchall()]
        days, check = chaos.custodian_close(phase, own, closed_before)
        for day in days:
            subprocess.run(
                [
                    sys.executable,
                    str(BASE_DIR / "manage.py"),
                    "run_custodian_simulator",
                    "--seed",
                    "1",
                    "--close-day",
                    day.isoformat(),
                ],
                cwd=BASE_DIR,
                env=self._env(),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        self.stdout.write(f"custodian closed {len(days)} day(s); waiting for the statuses")
        if self._wait_for_lag_zero(time.monotonic()) is None:
            raise CommandError("the custodian's statuses were not applied in time")
        return check

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "STREAM_SESSION_TIMEOUT_MS": "6000",
                "STREAM_MAX_POLL_INTERVAL_MS": "10000",
                "LOG_LEVEL": "WARNING",
            }
        )
        return env

    def _publish(self, sent: list[chaos.Sent], rate: int) -> None:
        producer = KafkaProducer(
            bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
            acks="all",
            linger_ms=10,
            enable_idempotence=True,
            retries=2**31 - 1,
            delivery_timeout_ms=600_000,
        )
        target = topics.topic(topics.TRADES_EXECUTED)
        started = time.monotonic()
        for n, message in enumerate(sent):
            producer.send(target, key=message.key, value=message.value)
            ahead = n / rate - (time.monotonic() - started)
            if ahead > 0.05:
                time.sleep(ahead)  # pacing the publisher, not synchronising a test
        producer.flush(timeout=600)
        producer.close()
        self.stdout.write(f"published {len(sent)} messages in {time.monotonic() - started:.0f} s")

    def _run_faults(self, faults: list[chaos.Fault], fleet: chaos.Fleet) -> None:
        started = time.monotonic()
        for fault in faults:
            delay = fault.at - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
            self.stdout.write(
                f"  t={time.monotonic() - started:6.1f}s {fault.kind} {fault.target} {fault.point}"
            )
            try:
                self._inject(fault, fleet)
            except Exception as error:  # a fault that fails to inject is reported, not fatal
                self.stdout.write(f"    fault {fault.kind} could not be injected: {error}")

    def _inject(self, fault: chaos.Fault, fleet: chaos.Fleet) -> None:
        scripts = BASE_DIR / "scripts"
        if fault.kind == "kill9":
            fleet.kill9(fault.target)
        elif fault.kind == "crash_at":
            fleet.crash_at(fault.target, fault.point)
        elif fault.kind == "park":
            fleet.park(fault.target, fault.point)
        elif fault.kind == "zombie":
            fleet.zombie(fault.target, seconds=12)
        elif fault.kind == "broker_restart":
            if "," in ",".join(settings.KAFKA_BOOTSTRAP_SERVERS):
                subprocess.run(
                    [str(scripts / "kafka" / "kafka.sh"), "kill-node", "2"],
                    check=True,
                    capture_output=True,
                )
                time.sleep(5)
                subprocess.run(
                    [str(scripts / "kafka" / "kafka.sh"), "start-node", "2"],
                    check=True,
                    capture_output=True,
                )
            else:
                subprocess.run(
                    [str(scripts / "kafka" / "kafka.sh"), "stop"], check=True, capture_output=True
                )
                subprocess.run(
                    [str(scripts / "kafka" / "kafka.sh"), "start"], check=True, capture_output=True
                )
        elif fault.kind == "postgres_restart":
            subprocess.run(
                [str(scripts / "services.sh"), "postgres", "restart"],
                check=True,
                capture_output=True,
            )
        elif fault.kind == "terminate_connections":
            with pg_connect() as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
        elif fault.kind == "rebalance_storm":
            for count in (3, 1, 3, 1, 2, 1):
                fleet.scale(fault.target, count)
                time.sleep(3)

    def _wait_for_lag_zero(self, since: float) -> float | None:
        """Seconds from the last fault until every group has lag 0 and the outbox is empty."""
        deadline = since + 900
        while time.monotonic() < deadline:
            try:
                close_old_connections()
                if (
                    sum(group_lag(settings.STREAMING.topic_prefix).values()) == 0
                    and outbox_backlog() == 0
                ):
                    return time.monotonic() - since
            except (psycopg.Error, Exception):  # the database may still be coming back
                connection.close()
            time.sleep(1)
        return None

    def _checks(
        self, seed: int, sent: list[chaos.Sent], caught_up: float | None
    ) -> list[chaos.Check]:
        expected = chaos.expect(sent)
        prefix = f"SIM{seed}-%"
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT trade_id, current_version, status FROM trades_trade WHERE trade_id LIKE %s",
                [prefix],
            )
            heads = {t: (v, s) for t, v, s in cursor.fetchall()}
            cursor.execute(
                "SELECT count(*), count(DISTINCT (trade_id, version)) FROM trades_tradeversion WHERE trade_id LIKE %s",
                [prefix],
            )
            versions, distinct = cursor.fetchone() or (0, 0)
            cursor.execute(
                "SELECT reason, count(*) FROM trades_traderefusal WHERE trade_id LIKE %s GROUP BY reason",
                [prefix],
            )
            refusals: Counter[str] = Counter(dict(cursor.fetchall()))
            cursor.execute(
                'SELECT count(*) FROM streaming_deadletter WHERE "group" = %s',
                [topics.group("capture")],
            )
            dead = (cursor.fetchone() or (0,))[0]
        checks = chaos.compare(expected, heads, versions, versions - distinct, dead, refusals)
        if bench.stage_available("compliance"):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(DISTINCT (trade_id, trade_version)), count(*) - count(DISTINCT (trade_id, trade_version))"
                    " FROM compliance_versionverdict WHERE trade_id LIKE %s",
                    [prefix],
                )
                evaluated, repeated = cursor.fetchone() or (0, 0)
            checks.append(
                chaos.Check(
                    "compliance evaluated every version once",
                    evaluated == expected.evaluated_versions and repeated == 0,
                    f"expected {expected.evaluated_versions}, found {evaluated} ({repeated} repeated)",
                )
            )
        checks += self._downstream_checks(prefix, sent)
        checks.append(
            chaos.Check(
                f"lag 0 within {LAG_DEADLINE_SECONDS} s of the last fault",
                caught_up is not None and caught_up <= LAG_DEADLINE_SECONDS,
                "never" if caught_up is None else f"{caught_up:.0f} s",
            )
        )
        return checks

    def _downstream_checks(self, prefix: str, sent: list[chaos.Sent]) -> list[chaos.Check]:
        """Settlement and P&L: each trade compliance let through held exactly once, at the version,
        side and quantity that was published; instructions net their obligations exactly once;
        every position equals the signed sum of its trades."""
        stages = [s for s in ("compliance", "settlement", "reporting") if bench.stage_available(s)]
        if "compliance" not in stages:
            return []

        def rows(sql: str) -> list[tuple[Any, ...]]:
            with connection.cursor() as cursor:
                cursor.execute(sql, [prefix] * sql.count("%s"))
                return list(cursor.fetchall())

        def held(sql: str) -> dict[str, list[tuple[int, str, Decimal]]]:
            found: dict[str, list[tuple[int, str, Decimal]]] = {}
            for trade_id, version, side, quantity in rows(sql):
                found.setdefault(trade_id, []).append((version, side, quantity))
            return found

        verdicts = {
            t: (v, s)
            for t, v, s in rows(
                "SELECT trade_id, validated_version, status FROM compliance_compliancetrade"
                " WHERE trade_id LIKE %s"
            )
        }
        expected = chaos.expect_in_force(sent, verdicts)
        checks = []
        if "settlement" in stages:
            checks.append(
                chaos.compare_in_force(
                    "settlement obligations",
                    expected,
                    held(
                        "SELECT trade_id, trade_version, side, quantity FROM settlement_obligation"
                        " WHERE status = 'ACTIVE' AND trade_id LIKE %s"
                    ),
                )
            )
            (unnetted, misnetted), *_ = rows(
                "WITH cur AS (SELECT i.id, i.net_quantity, m.trade_id"
                "  FROM settlement_instruction i JOIN settlement_chain_member m"
                "   ON m.chain_id = i.chain_id AND m.joined_version <= i.version"
                "   AND (m.left_version IS NULL OR m.left_version > i.version)"
                "  WHERE i.superseded_by = '' AND i.status <> 'CANCELLED' AND i.kind = 'NET'),"
                " held AS (SELECT trade_id, count(*) AS n FROM cur GROUP BY trade_id),"
                # a netting key whose obligations net to zero quantity and cash has no instruction
                " nil AS (SELECT chain_id FROM settlement_obligation WHERE status = 'ACTIVE'"
                "  GROUP BY chain_id"
                "  HAVING sum(CASE side WHEN 'BUY' THEN quantity ELSE -quantity END) = 0"
                "   AND sum(CASE side WHEN 'BUY' THEN -cash_amount ELSE cash_amount END) = 0),"
                " mine AS (SELECT trade_id, chain_id FROM settlement_obligation"
                "  WHERE status = 'ACTIVE' AND trade_id LIKE %s)"
                " SELECT (SELECT count(*) FROM mine LEFT JOIN held USING (trade_id)"
                "   WHERE coalesce(held.n, 0) <> 1"
                "    AND NOT (held.n IS NULL AND mine.chain_id IN (SELECT chain_id FROM nil))),"
                " (SELECT count(*) FROM (SELECT cur.id, min(cur.net_quantity) AS net,"
                "   coalesce(sum(CASE o.side WHEN 'BUY' THEN o.quantity ELSE -o.quantity END)"
                "    FILTER (WHERE o.status = 'ACTIVE'), 0) AS signed"
                "   FROM cur LEFT JOIN settlement_obligation o ON o.trade_id = cur.trade_id"
                "   GROUP BY cur.id) n WHERE n.net <> n.signed)"
            )
            checks.append(
                chaos.Check(
                    "instructions net each obligation once",
                    unnetted == 0 and misnetted == 0,
                    f"{unnetted} obligation(s) not in exactly one current instruction,"
                    f" {misnetted} instruction(s) whose net quantity is not the sum of theirs",
                )
            )
        if "reporting" in stages:
            checks.append(
                chaos.compare_in_force(
                    "P&L trades",
                    expected,
                    held(
                        "SELECT trade_id, version, side, quantity FROM reporting_positiontrade"
                        " WHERE status = 'LIVE' AND trade_id LIKE %s"
                    ),
                )
            )
        if "settlement" in stages:
            (instructions, paid, unpaid), *_ = rows(
                "SELECT count(*), coalesce(sum(n), 0), count(*) FILTER (WHERE settled <> net)"
                " FROM (SELECT i.instruction_id, i.settled_cash AS settled, count(p.id) AS n,"
                "  coalesce(sum(CASE WHEN p.creditor = i.account THEN p.amount ELSE -p.amount END),"
                "   0) AS net"
                "  FROM settlement_instruction i LEFT JOIN settlement_payment p"
                "   ON p.instruction_id = i.instruction_id AND p.source = 'SETTLEMENT'"
                "  WHERE i.settled_cash <> 0 OR p.id IS NOT NULL"
                "  GROUP BY i.instruction_id, i.settled_cash) x"
            )
            checks.append(
                chaos.Check(
                    "payments equal each instruction's settled cash",
                    unpaid == 0 and (instructions == 0 or paid > 0),
                    f"{instructions} instruction(s) with settled cash, {paid} payment(s);"
                    f" {unpaid} whose payments do not sum to it",
                )
            )
        if "reporting" in stages:
            # Every position, over every run's trades (the chaos database outlives a run): with
            # this run's trades checked one by one above, that closes the loop to the messages.
            (positions, off), *_ = rows(
                "SELECT count(*), count(*) FILTER (WHERE p.quantity <> coalesce(t.signed, 0))"
                " FROM reporting_position p LEFT JOIN (SELECT account, instrument,"
                "  sum(CASE side WHEN 'BUY' THEN quantity ELSE -quantity END) AS signed"
                "  FROM reporting_positiontrade WHERE status = 'LIVE'"
                "  GROUP BY account, instrument) t USING (account, instrument)"
            )
            checks.append(
                chaos.Check(
                    "positions equal the signed sum of their trades",
                    off == 0,
                    f"{off} of {positions} position(s) differ",
                )
            )
        return checks

    def _report(
        self,
        seed: int,
        options: dict[str, Any],
        checks: list[chaos.Check],
        fleet: chaos.Fleet,
        faults: list[chaos.Fault],
        seconds: float,
    ) -> None:
        kinds = Counter(f.kind for f in faults)
        per_stage = (
            f" {options['consumers']} consumers per stage," if options["consumers"] > 1 else ""
        )
        lines = [
            f"seed {seed}, {options['trades']} trades at {options['rate']}/s, {seconds:.0f} s,"
            f"{per_stage} faults: {', '.join(f'{k} x{n}' for k, n in sorted(kinds.items()))}",
            f"process restarts: {', '.join(f'{k} x{n}' for k, n in sorted(fleet.restarts.items())) or 'none'}",
            "",
            "| check | result | detail |",
            "|---|---|---|",
            *[f"| {c.name} | {'PASS' if c.passed else 'FAIL'} | {c.detail} |" for c in checks],
        ]
        for line in lines:
            self.stdout.write(line)
        path = Path(options["docs"])
        marker = f"<!-- chaos:{options['section']} -->"
        text = path.read_text() if path.is_file() else f"# Reliability\n\n{marker}\n{marker}\n"
        head, _, rest = text.partition(marker)
        _, _, tail = rest.partition(marker)
        stamp = f"Last run: {clock.now().isoformat(timespec='seconds')} — `make chaos` (`scripts/chaos.sh --seed {seed}` replays it)."
        path.write_text(
            head + marker + "\n" + stamp + "\n\n" + "\n".join(lines) + "\n" + marker + tail
        )
