from django.urls import path

from syncjobs import views

app_name = "syncjobs"

urlpatterns = [
    path("guilds/<str:guild_id>/sync-status", views.sync_status, name="sync-status"),
    path("stats", views.stats, name="stats"),
]
