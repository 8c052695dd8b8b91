from django.contrib import admin
from django.urls import include, path

from guildhub import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("api/", include("syncjobs.urls")),
    path("admin/", admin.site.urls),
]
