from django.urls import path

from . import distribution_views, funding_views, market_data_views, payout_views, statement_views, trading_views, views

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
    # Funding: deposit instructions and the investor's payment reference (docs/funding.md)
    path("add-funds/", funding_views.add_funds, name="add_funds"),
    # Payout accounts (docs/funding.md, "Payouts")
    path("payout-accounts/", payout_views.payout_accounts, name="payout_accounts"),
    path("payout-accounts/add", payout_views.payout_account_add, name="payout_account_add"),
    path("payout-accounts/<uuid:public_id>/remove", payout_views.payout_account_remove, name="payout_account_remove"),
    # The secondary market (docs/trading.md)
    path("assets/<uuid:asset_public_id>/trade/", trading_views.trade_page, name="asset_trade"),
    path("assets/<uuid:asset_public_id>/trade/book", trading_views.trade_market_data, name="trade_market_data"),
    path("assets/<uuid:asset_public_id>/trade/mine", trading_views.trade_mine, name="trade_mine"),
    path("assets/<uuid:asset_public_id>/trade/quote", trading_views.trade_quote, name="trade_quote"),
    path("assets/<uuid:asset_public_id>/trade/orders", trading_views.trade_order_place, name="trade_order_place"),
    path("trade-orders/<uuid:public_id>/", trading_views.trade_order_detail, name="trade_order"),
    path("trade-orders/<uuid:public_id>/cancel", trading_views.trade_order_cancel, name="trade_order_cancel"),
    path("trade-orders/<uuid:public_id>/modify", trading_views.trade_order_modify, name="trade_order_modify"),
    path("trades/<uuid:public_id>/", trading_views.trade_detail, name="trade"),
    # Market data and valuations (docs/market-integrity.md)
    path("assets/<uuid:asset_public_id>/chart", market_data_views.asset_chart, name="asset_chart"),
    path(
        "assets/<uuid:asset_public_id>/market-data.json",
        market_data_views.asset_market_data_json,
        name="asset_market_data_json",
    ),
    path("assets/<uuid:asset_public_id>/valuations/", market_data_views.valuation_submit, name="valuation_submit"),
    # Income distributions (marketplace/distributions.py)
    path("distributions/", distribution_views.my_distributions, name="distributions"),
    path(
        "distributions/reinvest/<uuid:asset_public_id>",
        distribution_views.reinvestment_update,
        name="reinvestment_update",
    ),
    path(
        "assets/<uuid:asset_public_id>/distributions/declare",
        distribution_views.distribution_declare,
        name="distribution_declare",
    ),
    path("distributions/<uuid:public_id>/cancel", distribution_views.distribution_cancel, name="distribution_cancel"),
    # Statements and the tax year (docs/statements.md)
    path("statements/", statement_views.statements, name="statements"),
    path(
        "statements/<int:year>/<int:month>.pdf",
        statement_views.statement_month,
        {"fmt": "pdf"},
        name="statement_month_pdf",
    ),
    path(
        "statements/<int:year>/<int:month>.csv",
        statement_views.statement_month,
        {"fmt": "csv"},
        name="statement_month_csv",
    ),
    path("tax/<int:year>.pdf", statement_views.tax_year, {"fmt": "pdf"}, name="tax_year_pdf"),
    path("tax/<int:year>.csv", statement_views.tax_year, {"fmt": "csv"}, name="tax_year_csv"),
    path("statements/investor/<int:user_id>/", statement_views.investor_statements, name="investor_statements"),
    path(
        "statements/investor/<int:user_id>/<int:year>/<int:month>.pdf",
        statement_views.investor_statement_month,
        {"fmt": "pdf"},
        name="investor_statement_month_pdf",
    ),
    path(
        "statements/investor/<int:user_id>/<int:year>/<int:month>.csv",
        statement_views.investor_statement_month,
        {"fmt": "csv"},
        name="investor_statement_month_csv",
    ),
    path(
        "statements/investor/<int:user_id>/tax/<int:year>.pdf",
        statement_views.investor_tax_year,
        {"fmt": "pdf"},
        name="investor_tax_year_pdf",
    ),
    path(
        "statements/investor/<int:user_id>/tax/<int:year>.csv",
        statement_views.investor_tax_year,
        {"fmt": "csv"},
        name="investor_tax_year_csv",
    ),
]
