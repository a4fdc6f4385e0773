"""One clock: no module but ``core/clock.py`` reads the wall clock (service-free).

The rule is checked on the syntax tree, so an alias (``from django.utils import timezone as tz``)
or a reference passed as a default (``default=timezone.now``) is caught as well as a call.
Durations are not dates: ``time.monotonic()`` and ``time.perf_counter()`` stay allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THE_CLOCK = ROOT / "core" / "clock.py"
SKIPPED_DIRS = {".venv", "var", "node_modules", "migrations", ".git", "__pycache__"}

# (module the name comes from, attribute): what each reads.
WALL_CLOCK = {
    ("django.utils.timezone", "now"): "timezone.now()",
    ("django.utils.timezone", "localdate"): "timezone.localdate()",
    ("datetime.datetime", "now"): "datetime.now()",
    ("datetime.datetime", "utcnow"): "datetime.utcnow()",
    ("datetime.datetime", "today"): "datetime.today()",
    ("datetime.date", "today"): "date.today()",
    ("time", "time"): "time.time()",
    ("time", "time_ns"): "time.time_ns()",
}
# Converters that read the clock only when given no value: ``timezone.localtime(some_instant)``
# is fine, ``timezone.localtime()`` is not.
WALL_CLOCK_WITHOUT_ARGS = {("django.utils.timezone", "localtime"): "timezone.localtime()"}
READS_WALL_CLOCK = "{path}:{line}: reads the wall clock ({what}); ask core.clock instead"


def wall_clock_reads(source: str, path: str = "<source>") -> list[str]:
    """Every place in ``source`` that reaches the wall clock other than through core.clock."""
    tree = ast.parse(source)
    # Which module each local name stands for: ``import time``, ``from datetime import date``,
    # ``from django.utils import timezone as tz``, ``import datetime as dt``.
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        # ``from time import time`` / ``from django.utils.timezone import now`` bind the reader.
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            key = (_dotted(node.func.value, names), node.func.attr)
            if key in WALL_CLOCK_WITHOUT_ARGS and not node.args and not node.keywords:
                what = WALL_CLOCK_WITHOUT_ARGS[key]  # type: ignore[index]
                found.append(READS_WALL_CLOCK.format(path=path, line=node.lineno, what=what))
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module, alias.name) in WALL_CLOCK:
                    what = WALL_CLOCK[(node.module, alias.name)]
                    found.append(READS_WALL_CLOCK.format(path=path, line=node.lineno, what=what))
        if not isinstance(node, ast.Attribute):
            continue
        owner = _dotted(node.value, names)
        if owner is not None and (owner, node.attr) in WALL_CLOCK:
            what = WALL_CLOCK[(owner, node.attr)]
            found.append(READS_WALL_CLOCK.format(path=path, line=node.lineno, what=what))
    return found


def _dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    """The full module path an expression like ``dt.datetime`` or ``timezone`` stands for."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value, names)
        return None if owner is None else f"{owner}.{node.attr}"
    return None


def python_files() -> list[Path]:
    return [
        path
        for path in sorted(ROOT.rglob("*.py"))
        if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts) and path != THE_CLOCK
    ]


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("from django.utils import timezone\nx = timezone.now()", "timezone.now()"),
        ("from django.utils import timezone as tz\nx = tz.localdate()", "timezone.localdate()"),
        ("from datetime import UTC, datetime\nx = datetime.now(UTC)", "datetime.now()"),
        ("import datetime as dt\nx = dt.date.today()", "date.today()"),
        ("import datetime\nx = datetime.datetime.utcnow()", "datetime.utcnow()"),
        ("import time\nx = time.time()", "time.time()"),
        ("from time import time\nx = time()", "time.time()"),
        ("from django.utils import timezone\nf = dict(default=timezone.now)", "timezone.now()"),
        ("from django.utils import timezone\nx = timezone.localtime()", "timezone.localtime()"),
    ],
)
def test_it_finds_each_way_of_reading_the_wall_clock(source, what):
    found = wall_clock_reads(source)
    assert found, f"missed {what}"
    assert f"({what})" in found[0]


def test_it_allows_durations_and_the_clock_itself():
    source = (
        "import time\nfrom core import clock\nfrom datetime import date\n"
        "from django.utils import timezone\n"
        "a = time.monotonic(); b = time.perf_counter(); c = clock.now(); d = date(2027, 1, 4)\n"
        "e = timezone.localtime(c)"
    )
    assert wall_clock_reads(source) == []


def test_no_module_but_core_clock_reads_the_wall_clock():
    offenders = [
        hit
        for path in python_files()
        for hit in wall_clock_reads(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert offenders == []
