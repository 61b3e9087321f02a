from django.urls import path
from django.views.generic import RedirectView

from . import views

app_name = "compliance"
urlpatterns = [
    # The investor dashboard moved to the marketplace (/market/dashboard/); bookmarks and
    # links in mails sent before still land there.
    path(
        "",
        RedirectView.as_view(pattern_name="marketplace:dashboard", permanent=True, query_string=True),
        name="dashboard_moved",
    ),
    path("kyc/", views.kyc_edit, name="kyc_edit"),
    path("kyc/<uuid:public_id>/", views.kyc_detail, name="kyc_detail"),
    path("kyc/documents/<uuid:public_id>", views.kyc_document, name="kyc_document"),
]
