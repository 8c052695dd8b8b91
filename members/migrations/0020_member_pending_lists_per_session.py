from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only. An index's gin_pending_list_limit overrides every session's, and the
# sessions now choose: 1 MB for Django's connections, 8 MB for a sync's own (see
# members/pending_lists.py). Until a connection sets one, PostgreSQL's default (4 MB) applies.
POSTGRES_UP = [
    "ALTER INDEX member_names_gin RESET (gin_pending_list_limit)",
    "ALTER INDEX member_trigrams_gin RESET (gin_pending_list_limit)",
]
POSTGRES_DOWN = [
    "ALTER INDEX member_names_gin SET (gin_pending_list_limit = 1024)",
    "ALTER INDEX member_trigrams_gin SET (gin_pending_list_limit = 1024)",
]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0019_member_search_keys_in_c"),
    ]

    operations = [
        migrations.RunPython(run_on_postgres(POSTGRES_UP), run_on_postgres(POSTGRES_DOWN)),
    ]
