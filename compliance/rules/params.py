"""Rule parameters and thresholds: what each rule accepts, its defaults, and their parsing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from compliance.rules.model import RuleConfig, RuleConfigError


def parse_positive_int(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise RuleConfigError(f"expected a whole number, got {raw!r}") from None
    if value <= 0:
        raise RuleConfigError(f"expected a positive whole number, got {raw!r}")
    return value


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"true", "yes", "1"}:
        return True
    if lowered in {"false", "no", "0"}:
        return False
    raise RuleConfigError(f"expected true or false, got {raw!r}")


def parse_status_list(raw: str) -> frozenset[str]:
    statuses = frozenset(s.strip().upper() for s in raw.split(",") if s.strip())
    if not statuses:
        raise RuleConfigError("expected a comma-separated list of statuses, got nothing")
    return statuses


Parser = Callable[[str], object]

# Every parameter a rule understands, with its parser and the default used when the row does not
# set it. validate_config rejects names not listed here so that an admin typo cannot silently
# fall back to the default.
PARAMS: Mapping[str, Mapping[str, tuple[Parser, str]]] = {
    "INACTIVE_INSTRUMENT": {"allowed_statuses": (parse_status_list, "ACTIVE")},
    "CREDIT_LIMIT": {"require_limit": (parse_bool, "false")},
    "WASH_TRADE": {"window_seconds": (parse_positive_int, "300")},
    "SUSPECTED_DUPLICATE": {"window_seconds": (parse_positive_int, "60")},
}

# Rules that cannot run without a threshold, with the default the seed rows carry.
THRESHOLDS: Mapping[str, Decimal] = {
    "MAX_NOTIONAL_TRADE": Decimal("10000000"),
    "MAX_NOTIONAL_ACCOUNT_DAY": Decimal("1000000000"),
    "FAT_FINGER": Decimal("0.05"),
}


def param(config: RuleConfig, name: str) -> object:
    """The parsed value of parameter ``name`` for ``config``, or its parsed default."""
    parser, default = PARAMS[config.code][name]
    raw = config.params.get(name, default)
    try:
        return parser(raw)
    except RuleConfigError as exc:
        raise RuleConfigError(f"{config.code} parameter {name}: {exc}") from None


def int_param(config: RuleConfig, name: str) -> int:
    value = param(config, name)
    if not isinstance(value, int):  # pragma: no cover - the PARAMS table guarantees it
        raise RuleConfigError(f"{config.code} parameter {name} is not a whole number")
    return value


def bool_param(config: RuleConfig, name: str) -> bool:
    value = param(config, name)
    if not isinstance(value, bool):  # pragma: no cover - the PARAMS table guarantees it
        raise RuleConfigError(f"{config.code} parameter {name} is not true or false")
    return value


def set_param(config: RuleConfig, name: str) -> frozenset[str]:
    value = param(config, name)
    if not isinstance(value, frozenset):  # pragma: no cover - the PARAMS table guarantees it
        raise RuleConfigError(f"{config.code} parameter {name} is not a list")
    return frozenset(str(v) for v in value)


def threshold(config: RuleConfig) -> Decimal:
    """The rule's threshold, refusing a missing, negative or non-finite one."""
    if config.threshold is None:
        raise RuleConfigError(f"{config.code} needs a threshold and none is set")
    if not config.threshold.is_finite() or config.threshold < 0:
        raise RuleConfigError(
            f"{config.code} threshold must be a non-negative number, got {config.threshold}"
        )
    return config.threshold
