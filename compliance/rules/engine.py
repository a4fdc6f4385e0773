"""The rule registry, the default rule rows, and the evaluation of a trade against its rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from compliance.rules import checks
from compliance.rules.model import (
    Context,
    RuleCheck,
    RuleConfig,
    RuleConfigError,
    RuleOutcome,
    TradeFacts,
)
from compliance.rules.params import PARAMS, THRESHOLDS, threshold

# Code -> rule function. The insertion order is the evaluation order, so outcomes always list
# in the same order whatever order the database returns rows in: cheap reference-data checks
# first, then limits, then the pattern checks over recent trades.
REGISTRY: Mapping[str, RuleCheck] = MappingProxyType(
    {
        "RESTRICTED_LIST": checks.check_restricted_list,
        "INACTIVE_INSTRUMENT": checks.check_inactive_instrument,
        "MAX_NOTIONAL_TRADE": checks.check_max_notional_trade,
        "MAX_NOTIONAL_ACCOUNT_DAY": checks.check_max_notional_account_day,
        "FAT_FINGER": checks.check_fat_finger,
        "CREDIT_LIMIT": checks.check_credit_limit,
        "NON_BUSINESS_SETTLE_DATE": checks.check_non_business_settle_date,
        "WASH_TRADE": checks.check_wash_trade,
        "SUSPECTED_DUPLICATE": checks.check_suspected_duplicate,
    }
)

# Actions the rules do not judge. Blocking a cancel would keep alive the very trade a breach
# asks to remove, so a CANCEL is never evaluated.
SKIPPED_ACTIONS: frozenset[str] = frozenset({"CANCEL"})


@dataclass(frozen=True)
class DefaultRule:
    """A rule row to seed into the database: code, description and default settings."""

    code: str
    description: str
    threshold: Decimal | None = None
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    enabled: bool = True

    def as_config(self) -> RuleConfig:
        """The rule as a :class:`RuleConfig` with no scope, as the seeded row would load."""
        return RuleConfig(
            code=self.code,
            enabled=self.enabled,
            threshold=self.threshold,
            params=MappingProxyType(dict(self.params)),
        )


_DESCRIPTIONS: Mapping[str, str] = {
    "RESTRICTED_LIST": "Instrument must not be on the restricted list.",
    "INACTIVE_INSTRUMENT": "Instrument status must be one of allowed_statuses (default ACTIVE).",
    "MAX_NOTIONAL_TRADE": "Trade notional in base currency must not exceed the threshold.",
    "MAX_NOTIONAL_ACCOUNT_DAY": (
        "Account's notional traded today, including this trade, in base currency must not "
        "exceed the threshold."
    ),
    "FAT_FINGER": (
        "Price must be within the threshold (a fraction, 0.05 = 5 %) of the last market price."
    ),
    "CREDIT_LIMIT": (
        "Counterparty exposure plus this trade's notional must not exceed its credit limit."
    ),
    "NON_BUSINESS_SETTLE_DATE": "Settle date must be a business day of the settlement market.",
    "WASH_TRADE": (
        "No buy and sell by the same account in the same instrument at the same price within "
        "window_seconds."
    ),
    "SUSPECTED_DUPLICATE": (
        "No other trade by the same account with the same instrument, side, quantity and price "
        "within window_seconds."
    ),
}

DEFAULT_RULES: tuple[DefaultRule, ...] = tuple(
    DefaultRule(
        code=code,
        description=_DESCRIPTIONS[code],
        threshold=THRESHOLDS.get(code),
        params=MappingProxyType({name: spec[1] for name, spec in PARAMS.get(code, {}).items()}),
    )
    for code in REGISTRY
)


def applies_to(config: RuleConfig, facts: TradeFacts) -> bool:
    """Whether the rule's scope covers the trade, ignoring whether the rule is enabled.

    Each scope set (books, accounts, instruments) is either empty, meaning every value, or must
    contain the trade's value; the three conditions must all hold.
    """
    return (
        (not config.scope_books or facts.book in config.scope_books)
        and (not config.scope_accounts or facts.account in config.scope_accounts)
        and (not config.scope_instruments or facts.instrument in config.scope_instruments)
    )


def validate_config(config: RuleConfig) -> list[str]:
    """Every problem that would stop the rule from running as configured; empty when valid.

    Checks the code is known, a threshold-driven rule has a finite non-negative threshold, and
    every parameter is one the rule understands with a parseable value. Meant for the admin
    form's ``clean()`` as well as for :func:`evaluate`, which fails such rules closed.
    """
    if config.code not in REGISTRY:
        return [f"unknown rule code {config.code!r}"]
    errors: list[str] = []
    if config.code in THRESHOLDS:
        try:
            threshold(config)
        except RuleConfigError as exc:
            errors.append(str(exc))
    known = PARAMS.get(config.code, {})
    for name in sorted(config.params):
        if name not in known:
            errors.append(f"{config.code} has no parameter {name!r}")
            continue
        try:
            known[name][0](config.params[name])
        except RuleConfigError as exc:
            errors.append(f"{config.code} parameter {name}: {exc}")
    return errors


def _order_key(config: RuleConfig) -> tuple[int, str, str, str, str, str, str]:
    # Several rows may share a code (e.g. different limits per book); a total order over every
    # field makes the outcome list independent of the order the rows arrived in.
    codes = list(REGISTRY)
    rank = codes.index(config.code) if config.code in REGISTRY else len(codes)
    return (
        rank,
        config.code,
        "" if config.threshold is None else str(config.threshold),
        repr(sorted(config.params.items())),
        repr(sorted(config.scope_books)),
        repr(sorted(config.scope_accounts)),
        repr(sorted(config.scope_instruments)),
    )


def evaluate(
    facts: TradeFacts, context: Context, configs: Iterable[RuleConfig]
) -> list[RuleOutcome]:
    """Run every enabled, in-scope rule on the trade and return the outcomes in a stable order.

    Disabled and out-of-scope rules produce no outcome; a trade whose action is in
    ``SKIPPED_ACTIONS`` (a cancel) produces none at all. A misconfigured rule (see
    :func:`validate_config`) or an unknown code fails closed with a detail naming the problem,
    because a broken compliance rule must not let trades through unnoticed. Outcomes follow the
    order of :data:`REGISTRY`, then a total order over the configuration fields.
    """
    if facts.action.strip().upper() in SKIPPED_ACTIONS:
        return []
    selected = sorted((c for c in configs if c.enabled and applies_to(c, facts)), key=_order_key)
    return [_run(facts, context, config) for config in selected]


def _run(facts: TradeFacts, context: Context, config: RuleConfig) -> RuleOutcome:
    return PreparedRule.of(config).run(facts, context)


@dataclass(frozen=True)
class PreparedRule:
    """A rule row validated once, for running on many trades (a stage batch): the same outcomes
    as :func:`evaluate` gives for the row alone, without re-validating it for every trade."""

    config: RuleConfig
    errors: tuple[str, ...]

    @classmethod
    def of(cls, config: RuleConfig) -> PreparedRule:
        return cls(config, tuple(validate_config(config)))

    def applies(self, facts: TradeFacts) -> bool:
        return (
            self.config.enabled
            and facts.action.strip().upper() not in SKIPPED_ACTIONS
            and applies_to(self.config, facts)
        )

    def run(self, facts: TradeFacts, context: Context) -> RuleOutcome:
        if self.errors:
            detail = "rule misconfigured: " + "; ".join(self.errors)
            return RuleOutcome(self.config.code, False, detail)
        return REGISTRY[self.config.code](facts, context, self.config)


def passed(outcomes: Sequence[RuleOutcome]) -> bool:
    """True when every outcome passed (and so also when no rule applied)."""
    return all(outcome.passed for outcome in outcomes)


def failures(outcomes: Sequence[RuleOutcome]) -> list[RuleOutcome]:
    """The failed outcomes, in their original order, for blotters and exception queues."""
    return [outcome for outcome in outcomes if not outcome.passed]
