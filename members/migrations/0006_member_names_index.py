from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only: the member's folded names as an array (search_text split at its
# separator, chr(31) = members.search_text.SEP), so that the search's exact-name tier
# is an index look-up rather than a pg_trgm scan that cannot see where a name ends.
POSTGRES_UP = [
    "CREATE INDEX IF NOT EXISTS member_names_gin ON members_member USING gin (string_to_array(search_text, chr(31)))",
]
POSTGRES_DOWN = ["DROP INDEX IF EXISTS member_names_gin"]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0005_member_search_order_indexes"),
    ]

    operations = [
        migrations.RunPython(run_on_postgres(POSTGRES_UP), run_on_postgres(POSTGRES_DOWN)),
    ]
