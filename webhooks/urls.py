from django.urls import path

from . import views

app_name = "webhooks"
urlpatterns = [
    path("", views.endpoints, name="endpoints"),
    path("<uuid:public_id>/", views.endpoint_detail, name="endpoint"),
    path("<uuid:public_id>/disable/", views.endpoint_disable, name="disable"),
    path("<uuid:public_id>/enable/", views.endpoint_enable, name="enable"),
    path("<uuid:public_id>/delete/", views.endpoint_delete, name="delete"),
]
