from django.apps import AppConfig


def _trade_printed(instance, created: bool = False, **_) -> None:
    if created:  # under the book's lock: the bump waits for the commit
        from .market_data_views import market_data_changed

        market_data_changed(instance.asset_id, after_commit=True)


def _asset_market_data_changed(instance, **_) -> None:
    """A valuation, or a document a valuation links to, was written or removed."""
    from .market_data_views import market_data_changed

    market_data_changed(instance.asset_id)


class MarketplaceConfig(AppConfig):
    name = "marketplace"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        # The offering page's cached chart and valuation history (market_data_views).
        post_save.connect(_trade_printed, sender="marketplace.Trade", dispatch_uid="marketplace.market.trade")
        for model in ("marketplace.Valuation", "assets.AssetDocument"):
            post_save.connect(_asset_market_data_changed, sender=model, dispatch_uid=f"marketplace.market.{model}.save")
            post_delete.connect(
                _asset_market_data_changed, sender=model, dispatch_uid=f"marketplace.market.{model}.delete"
            )
