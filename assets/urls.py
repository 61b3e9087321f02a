from django.urls import path

from . import views

app_name = "assets"
urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("<uuid:public_id>/", views.asset_detail, name="detail"),
    path("<uuid:public_id>/verify", views.asset_verify, name="verify"),
    path("m/<str:public_hex>.json", views.arc3_metadata, name="arc3"),
    path("documents/<uuid:public_id>", views.document_download, name="document"),
    path("documents/<uuid:public_id>/preview", views.document_preview, name="document_preview"),
    path("images/<uuid:public_id>", views.asset_image, name="image"),
    path("images/<uuid:public_id>/thumbnail", views.asset_image_thumbnail, name="image_thumbnail"),
    path("issuer/", views.issuer_dashboard, name="issuer_dashboard"),
    path("issuer/new", views.asset_create, name="create"),
    path("issuer/<uuid:public_id>/", views.asset_manage, name="manage"),
    path("issuer/<uuid:public_id>/edit", views.asset_edit, name="edit"),
    path("issuer/<uuid:public_id>/documents", views.document_upload, name="document_upload"),
    path("issuer/<uuid:public_id>/documents/<uuid:document_id>/delete", views.document_delete, name="document_delete"),
    path("issuer/<uuid:public_id>/images", views.asset_image_upload, name="image_upload"),
    path("issuer/<uuid:public_id>/images/<uuid:image_id>/delete", views.asset_image_delete, name="image_delete"),
    path("issuer/<uuid:public_id>/submit", views.asset_submit, name="submit"),
]
