from django.urls import path

from .. import views

app_name = "api"
urlpatterns = [
    path("", views.api_tokens, name="tokens"),
    path("<int:pk>/revoke/", views.api_token_revoke_view, name="token_revoke"),
]
