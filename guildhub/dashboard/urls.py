from django.urls import path

from guildhub.dashboard import views
from members.views import member_options

app_name = "dashboard"

# Ids are taken as text so that a malformed one gets the same 404 as an unknown one.
urlpatterns = [
    path("", views.guild_list, name="home"),
    path("guilds/<str:guild_id>/", views.guild_detail, name="guild"),
    path("guilds/<str:guild_id>/sync", views.guild_sync, name="guild-sync"),
    path("guilds/<str:guild_id>/members/options", member_options, name="member-options"),
    path("jobs/<str:job_id>/", views.job_detail, name="job"),
]
