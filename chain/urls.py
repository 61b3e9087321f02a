from django.urls import path

from . import views

app_name = "chain"

urlpatterns = [
    # Any text reaches the view, which answers a malformed id with a 404 and a message.
    path("tx/<str:txid>/", views.tx_detail, name="tx"),
    path("asset/<int:asset_id>/", views.asset_detail, name="asset"),
]
