from django.urls import path

from . import views

app_name = "marketplace"
urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("offerings/<uuid:asset_public_id>/", views.offering_detail, name="offering"),
    path("offerings/<uuid:asset_public_id>/quote", views.offering_quote, name="quote"),
    path("offerings/<uuid:asset_public_id>/buy", views.order_place, name="order_place"),
    path("orders/<uuid:public_id>/", views.order_detail, name="order"),
    path("portfolio/", views.portfolio, name="portfolio"),
    path("portfolio/transactions.csv", views.portfolio_csv, name="portfolio_csv"),
    path("portfolio/holdings/<int:pk>/chain", views.holding_chain_check, name="holding_chain_check"),
    path("withdrawals/new", views.withdrawal_create, name="withdrawal_create"),
]
