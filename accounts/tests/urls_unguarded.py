"""A URL configuration with two password logins that skip allauth, for the check's test."""

from django.contrib.admin import AdminSite
from django.contrib.auth.views import LoginView
from django.urls import path

urlpatterns = [
    path("backdoor/", AdminSite(name="backdoor").urls),
    path("plain-login/", LoginView.as_view()),
]
