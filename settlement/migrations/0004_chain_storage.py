# Storage for the netting chain head, which every batch updates (about 1.5 updates a trade):
#
# - fillfactor 50 leaves room on each page for the row's next version, so the update stays on
#   its page (HOT) and writes no index entries; at the default 100 about half the updates in
#   `make bench` found their page full and wrote a new entry in each index.
# - chain_id is the primary key; Django gives a varchar key a second, varchar_pattern_ops index
#   for LIKE 'prefix%' searches. Nothing searches chains by prefix, so it only costs a write.

from django.db import migrations

from backoffice.storage import DropPatternIndexes, SetFillfactor


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0003_netting_chains"),
    ]

    operations = [
        SetFillfactor("settlement_chain", 50),
        DropPatternIndexes("settlement_chain", "chain_id"),
    ]
