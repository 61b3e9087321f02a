"""Proofs about the cash ledger, in SQL over the whole book (used by `ledger_check` and
the tests):
- every journal entry has postings, and they sum to zero per currency;
- every account's balance equals the sum of its postings;
- no account but the bank is below zero."""

from dataclasses import dataclass, field

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce

from .models import JournalEntry, LedgerAccount, Posting


@dataclass
class LedgerReport:
    entries: int = 0
    accounts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def ledger_verify() -> LedgerReport:
    report = LedgerReport(entries=JournalEntry.objects.count(), accounts=LedgerAccount.objects.count())
    for row in (
        Posting.objects.values("entry_id", "account__currency")
        .annotate(total=Sum("amount_minor"))
        .exclude(total=0)
        .order_by("entry_id")
    ):
        report.problems.append(
            f"journal entry #{row['entry_id']} does not balance in {row['account__currency']}: {row['total']:+d}"
        )
    for entry_id in JournalEntry.objects.annotate(n=Count("postings")).filter(n__lt=2).values_list("pk", flat=True):
        report.problems.append(f"journal entry #{entry_id} has fewer than two postings")
    for account in (
        LedgerAccount.objects.annotate(posted=Coalesce(Sum("postings__amount_minor"), 0))
        .exclude(balance=F("posted"))
        .order_by("pk")
    ):
        report.problems.append(
            f"account #{account.pk} ({account}) balance {account.balance} != postings {account.posted}"
        )
    for negative in LedgerAccount.objects.filter(Q(balance__lt=0) & ~Q(kind=LedgerAccount.Kind.BANK)).order_by("pk"):
        report.problems.append(f"account #{negative.pk} ({negative}) is negative: {negative.balance}")
    return report
