# Storage for the rows the reporting stage writes every batch:
#
# - fillfactor 70 on the open positions, updated in place as trades arrive, so the update finds
#   room on its page (HOT) and writes no index entries;
# - no varchar_pattern_ops index on the position trades' trade_id: nothing searches them by
#   prefix (the trade blotter's prefix filter reads trades_trade, which keeps its own).

from django.db import migrations

from backoffice.storage import DropPatternIndexes, SetFillfactor


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0002_position_checkpoints"),
    ]

    operations = [
        SetFillfactor("reporting_position", 70),
        DropPatternIndexes("reporting_positiontrade", "trade_id"),
    ]
