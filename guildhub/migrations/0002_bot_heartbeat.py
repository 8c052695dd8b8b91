import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("guildhub", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="BotHeartbeat",
            fields=[
                ("shard_id", models.PositiveIntegerField(primary_key=True, serialize=False)),
                ("seen_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "latency_ms",
                    models.PositiveIntegerField(blank=True, help_text="gateway heartbeat round trip", null=True),
                ),
                ("guild_count", models.PositiveIntegerField(default=0)),
                ("session", models.CharField(blank=True, default="", help_text="gateway session id", max_length=100)),
            ],
            options={
                "ordering": ["shard_id"],
            },
        ),
    ]
