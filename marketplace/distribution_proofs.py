"""Proofs about income distributions (`manage.py distribution_check`, the tests, the demo).

For every distribution that has started paying:
1. Σ net + Σ withheld + Σ held + Σ returned = gross, exactly, and every share is booked
   once (one row per holder; the treasury's once);
2. every holder's units equal their recomputation from the unit history at the record
   date, nobody is missing and nobody is extra, and every share equals the largest-
   remainder allocation recomputed from those units;
3. the books agree: what its journal entries moved out of the distribution funds, into
   the withholding and suspense accounts and into each holder's cash equals what its
   payment rows say.
And for the distribution funds account: its balance is what funded distributions still
owe. Grouped queries: a constant number per distribution, whatever its holder count."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Sum

from .distributions import entitlements
from .models import Distribution, DistributionPayment, LedgerAccount, Posting

P = DistributionPayment.Status
K = LedgerAccount.Kind


@dataclass
class DistributionReport:
    distributions: int = 0
    payments: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _postings_by_kind(distribution: Distribution) -> dict[str, int]:
    rows = (
        Posting.objects.filter(entry__distribution=distribution, account__user__isnull=True)
        .values_list("account__kind")
        .annotate(total=Sum("amount_minor"))
        .order_by()
    )
    return dict(rows)


def _verify_one(d: Distribution, report: DistributionReport) -> None:
    name = f"distribution #{d.pk} ({d})"
    payments = list(
        DistributionPayment.objects.filter(distribution=d).values_list(
            "investor_id", "treasury", "units", "gross_minor", "net_minor", "withheld_minor", "status"
        )
    )
    report.payments += len(payments)
    if d.status == Distribution.Status.PAID and any(p[6] == P.PENDING for p in payments):
        report.problems.append(f"{name} is paid but has pending shares")
    totals: dict[str, int] = defaultdict(int)
    for _, _, _, gross, net, withheld, status in payments:
        if status in DistributionPayment.PAID_OUT:
            totals["net"] += net
            totals["withheld"] += withheld
            if net + withheld != gross:
                report.problems.append(f"{name}: a share's net + withheld != its gross")
        elif status == P.HELD:
            totals["held"] += gross
        elif status == P.RETURNED:
            totals["returned"] += gross
        else:
            totals["pending"] += gross
    accounted = totals["net"] + totals["withheld"] + totals["held"] + totals["returned"] + totals["pending"]
    if accounted != d.gross_minor:
        report.problems.append(
            f"{name}: Σ net {totals['net']} + withheld {totals['withheld']} + held {totals['held']} + returned "
            f"{totals['returned']} + pending {totals['pending']} = {accounted} != gross {d.gross_minor}"
        )
    keys = [(p[0], p[1]) for p in payments]
    if len(keys) != len(set(keys)):
        report.problems.append(f"{name}: a holder has more than one share")

    # 2. entitlement recomputed from the unit history at the record date
    expected = {(s.investor_id, s.treasury): (s.units, s.gross_minor) for s in entitlements(d)}
    stored = {(p[0], p[1]): (p[2], p[3]) for p in payments}
    for key in expected.keys() - stored.keys():
        report.problems.append(f"{name}: holder {key[0]}{' (treasury)' if key[1] else ''} has no share")
    for key in stored.keys() - expected.keys():
        report.problems.append(
            f"{name}: holder {key[0]}{' (treasury)' if key[1] else ''} held nothing at the record date"
        )
    for key in expected.keys() & stored.keys():
        if expected[key] != stored[key]:
            report.problems.append(
                f"{name}: holder {key[0]} has (units, gross) {stored[key]}, recomputed {expected[key]}"
            )

    # 3. the books
    by_kind = _postings_by_kind(d)
    booked_out = totals["net"] + totals["withheld"] + totals["held"] + totals["returned"]
    funds = by_kind.get(K.DISTRIBUTION_FUNDS, 0)
    if funds != d.funded_minor - booked_out:
        report.problems.append(
            f"{name}: its entries left {funds} in the distribution funds, expected funded {d.funded_minor} − paid {booked_out}"
        )
    if by_kind.get(K.WITHHOLDING_TAX, 0) != totals["withheld"]:
        report.problems.append(
            f"{name}: withholding postings {by_kind.get(K.WITHHOLDING_TAX, 0)} != Σ withheld {totals['withheld']}"
        )
    if by_kind.get(K.DISTRIBUTION_SUSPENSE, 0) != totals["held"]:
        report.problems.append(
            f"{name}: suspense postings {by_kind.get(K.DISTRIBUTION_SUSPENSE, 0)} != Σ held {totals['held']}"
        )
    credited = dict(
        Posting.objects.filter(entry__distribution=d, account__kind=K.INVESTOR_AVAILABLE)
        .values_list("account__user_id")
        .annotate(total=Sum("amount_minor"))
        .order_by()
    )
    owed: dict[int, int] = defaultdict(int)
    for investor_id, treasury, _, _, net, _, status in payments:
        if not treasury and status in DistributionPayment.PAID_OUT and net:
            owed[investor_id] += net
    if credited != dict(owed):
        wrong = sorted(set(credited.items()) ^ set(owed.items()))[:5]
        report.problems.append(f"{name}: holders' cash credited != their net shares (first differences {wrong})")


def distribution_verify() -> DistributionReport:
    report = DistributionReport()
    started = Distribution.objects.filter(
        status__in=[Distribution.Status.PAYING, Distribution.Status.PAID]
    ).select_related("asset")
    for d in started.order_by("pk"):
        report.distributions += 1
        _verify_one(d, report)
    # Nothing was booked for a distribution that never started paying.
    stray = DistributionPayment.objects.exclude(
        distribution__status__in=[Distribution.Status.PAYING, Distribution.Status.PAID]
    ).count()
    if stray:
        report.problems.append(f"{stray} shares belong to distributions that are not being paid")
    # The distribution funds account holds exactly what funded distributions still owe,
    # per currency.
    owed: dict[str, int] = defaultdict(int)
    for currency, funded in (
        Distribution.objects.exclude(status=Distribution.Status.CANCELLED)
        .values_list("currency")
        .annotate(f=Sum("funded_minor"))
        .order_by()
    ):
        owed[currency] += funded
    for currency, booked in (
        DistributionPayment.objects.exclude(status=P.PENDING)
        .values_list("distribution__currency")
        .annotate(g=Sum("gross_minor"))
        .order_by()
    ):
        owed[currency] -= booked
    balances = dict(
        LedgerAccount.objects.filter(kind=K.DISTRIBUTION_FUNDS, user__isnull=True).values_list("currency", "balance")
    )
    for currency in sorted(set(owed) | set(balances)):
        if balances.get(currency, 0) != owed.get(currency, 0):
            report.problems.append(
                f"distribution funds hold {balances.get(currency, 0)} {currency}, "
                f"funded distributions still owe {owed.get(currency, 0)}"
            )
    dupes = (
        DistributionPayment.objects.values("distribution_id", "investor_id", "treasury")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    if dupes:
        report.problems.append(f"{dupes} holders were paid twice for one distribution")
    return report
