from django.apps import AppConfig
from django.db.backends.signals import connection_created


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Members"

    def ready(self) -> None:
        from members.pending_lists import limit_for_connection

        connection_created.connect(limit_for_connection, dispatch_uid="members.pending_lists")
