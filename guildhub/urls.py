from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from guildhub import views

urlpatterns = [
    path("", include("guildhub.dashboard.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("api/", include("syncjobs.urls")),
    path("api/", include("members.api")),
    path("admin/", admin.site.urls),
]
