from django.conf import settings
from django.db import models
from django.db.models import Q


class Holding(models.Model):
    """How many fractions of an asset an investor owns according to our books.
    `quantity` counts settled units only: it must equal the investor's on-chain balance
    (chain reconciliation checks exactly that)."""

    investor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="holdings")
    asset = models.ForeignKey("assets.Asset", on_delete=models.PROTECT, related_name="holdings")
    quantity = models.BigIntegerField(default=0)
    first_acquired_at = models.DateTimeField(null=True, blank=True, help_text="Start of any lock-up.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["investor", "asset"], name="holding_one_per_investor_asset"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="holding_quantity_not_negative"),
        ]

    def __str__(self):
        return f"{self.investor} holds {self.quantity} of {self.asset}"
