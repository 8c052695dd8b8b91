from django.apps import AppConfig


class GuildhubConfig(AppConfig):
    name = "guildhub"
    verbose_name = "GuildHub"
