"""Two member indexes fewer: every sync writes each index of every row it inserts.

- The foreign key's own index on guild_id: the unique (guild_id, user_id) index,
  like every other member index, starts with guild_id and answers the same look-ups.
- (guild_id, display_name): the admin's display-name search now uses the folded
  display name (sort_key), which the picker's (guild_id, sort_key, user_id) index holds.

On SQLite, Django alters a field by rebuilding the whole table, which would drop the
FTS5 triggers of migration 0003 and leave search silently empty. So the state changes
as AlterField says, and the database only drops the index, on either backend.
"""

import django.db.models.deletion
from django.db import migrations, models


def guild_id_indexes(schema_editor) -> list[str]:
    """The names of the indexes on members_member(guild_id) alone, not unique."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "members_member")
    return [
        name
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == ["guild_id"]
    ]


def drop_guild_id_index(apps, schema_editor) -> None:
    for name in guild_id_indexes(schema_editor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


def create_guild_id_index(apps, schema_editor) -> None:
    if not guild_id_indexes(schema_editor):
        schema_editor.execute('CREATE INDEX "members_member_guild_id" ON "members_member" ("guild_id")')


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0007_member_fingerprint"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="member", name="member_guild_display"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="member",
                    name="guild",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="members",
                        to="members.guild",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_guild_id_index, create_guild_id_index)],
        ),
    ]
