"""The cluster's schedules, created with the database so nobody sets them up by hand."""

from django.db import migrations

SCHEDULES = [
    # Every minute: queue the guilds whose own interval (30 minutes by default) has passed.
    ("guildhub: queue due member syncs", "members.tasks.enqueue_due_member_syncs"),
    # Every minute: re-queue runs whose worker died (lease expired) or whose task the broker lost.
    ("guildhub: reap sync jobs", "members.tasks.reap_sync_jobs"),
]


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": "I", "minutes": 1, "repeats": -1},
        )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=[name for name, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
