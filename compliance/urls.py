from django.urls import path

from . import views

app_name = "compliance"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("kyc/", views.kyc_edit, name="kyc_edit"),
    path("kyc/<uuid:public_id>/", views.kyc_detail, name="kyc_detail"),
    path("kyc/documents/<uuid:public_id>", views.kyc_document, name="kyc_document"),
]
