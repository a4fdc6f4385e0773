"""Pure compliance rules: trade facts and context in, one outcome per applicable rule out.

Nothing here touches Django, the database, the clock or the network. The database layer turns
the editable rule rows into :class:`RuleConfig` objects, gathers :class:`TradeFacts` and
:class:`Context`, and calls :func:`evaluate`; this package only decides, so every verdict can be
reproduced from the stored facts alone. Amounts are ``Decimal`` throughout; limits are inclusive
(exactly at a limit passes). ``docs/compliance-rules.md`` describes every rule.
"""

from compliance.rules.checks import (
    check_credit_limit,
    check_fat_finger,
    check_inactive_instrument,
    check_max_notional_account_day,
    check_max_notional_trade,
    check_non_business_settle_date,
    check_restricted_list,
    check_suspected_duplicate,
    check_wash_trade,
)
from compliance.rules.engine import (
    DEFAULT_RULES,
    REGISTRY,
    SKIPPED_ACTIONS,
    DefaultRule,
    PreparedRule,
    applies_to,
    evaluate,
    failures,
    passed,
    validate_config,
)
from compliance.rules.model import (
    Context,
    RecentTrade,
    RuleCheck,
    RuleConfig,
    RuleConfigError,
    RuleOutcome,
    TradeFacts,
)

__all__ = [
    "DEFAULT_RULES",
    "REGISTRY",
    "SKIPPED_ACTIONS",
    "Context",
    "DefaultRule",
    "PreparedRule",
    "RecentTrade",
    "RuleCheck",
    "RuleConfig",
    "RuleConfigError",
    "RuleOutcome",
    "TradeFacts",
    "applies_to",
    "check_credit_limit",
    "check_fat_finger",
    "check_inactive_instrument",
    "check_max_notional_account_day",
    "check_max_notional_trade",
    "check_non_business_settle_date",
    "check_restricted_list",
    "check_suspected_duplicate",
    "check_wash_trade",
    "evaluate",
    "failures",
    "passed",
    "validate_config",
]
