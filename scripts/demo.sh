#!/usr/bin/env bash
# Streams simulated trades through the running platform and says where the UI is.
# Usage: scripts/demo.sh [TRADES] [RATE]   (started by `make demo` after scripts/start.sh)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
count="${1:-10000}"; rate="${2:-2000}"
cd "$ROOT"
business="$("$PY" manage.py business_date)"
earlier="$("$PY" manage.py business_date --business-days -2)"
settled=$(( count * 7 / 10 )); fresh=$(( count - settled ))
# One rule for "today" (docs/time.md): the business date. The demo trades most of its flow two
# business days earlier, so that it has settled (T+1 and T+2) by the business date and the
# custodian can close those days; the rest trades on the business date and is still pending.
# Nothing is settled in the future, so every page, defaulting to the business date, agrees
# with the dashboard.
info "business date $business: streaming $settled trades dated $earlier and $fresh dated $business at $rate/s"
"$PY" manage.py produce_trades --count "$settled" --rate "$rate" --seed "${DEMO_SEED:-42}" --business-day -2 \
  --amend-share 0.05 --cancel-share 0.02 --malformed-share 0.01 --invalid-share 0.002
"$PY" manage.py produce_trades --count "$fresh" --rate "$rate" --seed "$(( ${DEMO_SEED:-42} + 1 ))" \
  --amend-share 0.05 --cancel-share 0.02 --malformed-share 0.01 --invalid-share 0.002
seed="${DEMO_SEED:-42}"
info "market prices: 50 days of closes (for VaR) and the business date's ticks"
"$PY" manage.py produce_prices --seed "$seed" --start "$("$PY" manage.py business_date --business-days -35)T14:30:00Z" --interval 23400 --count 2250
"$PY" manage.py produce_prices --seed "$seed" --count 3000 --interval 600
"$PY" manage.py pipeline_wait --timeout 600

info "end of day: the custodian settles what is due by $business and sends statements; P&L snapshots"
due="$("$PY" manage.py shell --no-imports -c "from settlement.models import CustodianInstruction as C
from trades.selectors import business_date
days = C.objects.filter(settle_date__lte=business_date()).values_list('settle_date', flat=True)
print(' '.join(sorted({d.isoformat() for d in days})))")"
for day in $due; do
  "$PY" manage.py run_custodian_simulator --seed "$seed" --close-day "$day" --statement-date "$day"
done
"$PY" manage.py pipeline_wait --timeout 600
"$PY" manage.py run_eod
"$ROOT/scripts/status.sh"
cat <<TXT

The back office is running; its business date is $business.
  Web UI:    http://127.0.0.1:$WEB_PORT/          API: http://127.0.0.1:$WEB_PORT/api/docs/
  Log in as: analyst / demo-analyst   (operations: proposes, works breaks)
             approver / demo-approver (approver: confirms four-eyes decisions)
             viewer / demo-viewer     (read only)      admin / demo-admin (Django admin)
  More trades: .venv/bin/python manage.py produce_trades --count 1000 --rate 500
  Stop everything: make stop
TXT
