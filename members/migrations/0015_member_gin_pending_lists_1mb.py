from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only. 0012 cut the GIN pending lists from 4 MB to 256 kB because every search
# reads the whole list until it is merged. Merging is most of what a member write costs, and
# merging more at a time costs less per entry. The two writers of a sync (MEMBER_SYNC_WRITERS)
# then spend less on it. 200k generated members written in pages of 1000, on this machine:
# 256 kB: 70-75 µs a member for the trigram index, and 17.7 MB of index; 512 kB: 58 µs, 18.2 MB;
# 1 MB: 53 µs, 18.5 MB; 4 MB: 46 µs, 21.3 MB. At 1 MB a search reads at most a quarter of what
# made 0012 necessary, and the index grows by 4.5 % rather than 20 %.
POSTGRES_UP = [
    "ALTER INDEX member_names_gin SET (gin_pending_list_limit = 1024)",
    "ALTER INDEX member_trigrams_gin SET (gin_pending_list_limit = 1024)",
]
POSTGRES_DOWN = [
    "ALTER INDEX member_names_gin SET (gin_pending_list_limit = 256)",
    "ALTER INDEX member_trigrams_gin SET (gin_pending_list_limit = 256)",
]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0014_member_no_linguistic_sort_index"),
    ]

    operations = [
        migrations.RunPython(run_on_postgres(POSTGRES_UP), run_on_postgres(POSTGRES_DOWN)),
    ]
