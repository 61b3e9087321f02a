"""The eligibility engine: the one place that decides whether an investor may receive or
send units of an asset, and says why not.

Two halves:
- `evaluate(facts)` is pure: a function of a small `TransferFacts` value, evaluating every
  rule and returning every failure. It is table-tested without a database.
- `transfer_facts_gather(...)` reads the person's standing (KYC, sanctions, freeze) and
  joins it with the asset's rules and the holding facts the caller hands in.

The holdings are the marketplace's books, a layer above this one, so the engine never
reads them: the caller passes the investor's holding (a row with `quantity`,
`pending_quantity` and `first_acquired_at`, or None) and the asset's holder count
(the marketplace's selectors read both and call in). Whether the offering is open is the
offering's own check, in the marketplace, not a rule about the investor.

`transfer_check` joins them; the marketplace calls it before accepting an order and the UI
calls it to explain a disabled button. `settlement_check` is the second look just before a
reserved transfer is signed (the chain outbox's before_sign hook).

Concurrency: the holder count and the investor's holding are what the caller read. A
caller that acts on the answer (reserve, settle) must hold the lock on the asset's
offering row (and the holding) while reading them and checking, so two buyers cannot both
become the last allowed holder."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final, Literal

from django.utils import timezone
from django.utils.formats import date_format

from .countries import country_name
from .kyc_state import KycState
from .models import KycApplication
from .selectors import frozen_user_ids, investor_standing_for, kyc_standings_for_many

Direction = Literal["receive", "send"]
RECEIVE: Final = "receive"
SEND: Final = "send"


@dataclass(frozen=True)
class RuleFailure:
    code: str
    message: str


@dataclass(frozen=True)
class EligibilityResult:
    failures: list[RuleFailure] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.failures

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.failures]

    @property
    def reason(self) -> str:
        """All failure messages as one sentence block, for a tooltip or a flash."""
        return " ".join(f.message for f in self.failures)

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class TransferFacts:
    direction: Direction
    quantity: int
    at: datetime
    # The investor
    kyc_state: str = KycState.NONE
    kyc_expires_at: date | None = None
    sanctions_clear: bool = True
    frozen: bool = False
    residence_country: str = ""
    qualified_investor: bool = False  # accredited or professional
    # The asset's rules (assets.Asset)
    allowed_countries: tuple[str, ...] = ()
    accreditation_required: bool = False
    min_holding: int = 0
    max_holding: int | None = None
    max_holders: int | None = None
    lockup_days: int = 0
    # Where things stand (the marketplace's books, handed in by the caller)
    current_quantity: int = 0
    first_acquired_at: datetime | None = None
    holder_count: int = 0  # investors holding more than zero units


def _day(value) -> str:
    return date_format(value, "j M Y")


# Each rule looks at the facts and returns a failure or None. Order is the order shown.
def _rule_quantity(f: TransferFacts):
    if f.quantity <= 0:
        return RuleFailure("quantity_invalid", "The quantity must be a whole number of at least 1.")


def _rule_kyc(f: TransferFacts):
    if f.direction == SEND:
        # Exit-only: a lapsed KYC may still sell what it holds.
        if f.kyc_state in (KycState.APPROVED, KycState.EXPIRED):
            return None
        return RuleFailure("kyc_not_approved", "Your identity has not been verified (KYC), so you cannot sell.")
    if f.kyc_state == KycState.APPROVED:
        return None
    if f.kyc_state == KycState.EXPIRED:
        when = f" on {_day(f.kyc_expires_at)}" if f.kyc_expires_at else ""
        return RuleFailure(
            "kyc_expired",
            f"Your KYC verification expired{when}. You can still sell (exit-only), but renew your KYC to buy.",
        )
    messages = {
        KycState.NONE: "Verify your identity (KYC) before buying.",
        KycState.PENDING: "Your KYC application is not approved yet.",
        KycState.REJECTED: "Your KYC application was rejected, so you cannot buy.",
    }
    return RuleFailure("kyc_not_approved", messages.get(f.kyc_state, messages[KycState.NONE]))


def _rule_sanctions(f: TransferFacts):
    if not f.sanctions_clear:
        return RuleFailure(
            "sanctions_hit",
            "Your name matched a sanctions list entry; transfers wait until compliance has reviewed it.",
        )


def _rule_frozen(f: TransferFacts):
    if f.frozen:
        return RuleFailure("account_frozen", "Your account is frozen by compliance; contact support.")


def _rule_country(f: TransferFacts):
    # Selling is an exit and never blocked by residence; buying is.
    if f.direction != RECEIVE or not f.allowed_countries:
        return None
    if (f.residence_country or "").upper() not in {c.upper() for c in f.allowed_countries}:
        where = country_name(f.residence_country) if f.residence_country else "an unknown country"
        return RuleFailure("country_not_allowed", f"This offering is not open to residents of {where}.")


def _rule_accreditation(f: TransferFacts):
    if f.direction == RECEIVE and f.accreditation_required and not f.qualified_investor:
        return RuleFailure(
            "accreditation_required", "This offering is only open to accredited or professional investors."
        )


def _rule_holding_limits(f: TransferFacts):
    failures = []
    if f.direction == RECEIVE:
        after = f.current_quantity + f.quantity
        if f.min_holding and after < f.min_holding:
            failures.append(
                RuleFailure(
                    "below_min_holding", f"The minimum holding is {f.min_holding:,} units; you would hold {after:,}."
                )
            )
        if f.max_holding is not None and after > f.max_holding:
            room = max(f.max_holding - f.current_quantity, 0)
            failures.append(
                RuleFailure(
                    "above_max_holding",
                    f"The maximum holding is {f.max_holding:,} units per investor; you can receive at most {room:,} more.",
                )
            )
    else:
        if f.quantity > f.current_quantity:
            failures.append(
                RuleFailure(
                    "insufficient_holding", f"You hold {f.current_quantity:,} units, fewer than {f.quantity:,}."
                )
            )
        else:
            after = f.current_quantity - f.quantity
            if f.min_holding and 0 < after < f.min_holding:
                failures.append(
                    RuleFailure(
                        "below_min_holding",
                        f"You would keep {after:,} units, under the minimum holding of {f.min_holding:,}; sell all or keep at least the minimum.",
                    )
                )
    return failures


def _rule_max_holders(f: TransferFacts):
    if (
        f.direction == RECEIVE
        and f.max_holders is not None
        and f.current_quantity == 0
        and f.holder_count >= f.max_holders
    ):
        return RuleFailure("max_holders_reached", f"This asset already has the maximum of {f.max_holders:,} holders.")


def _rule_lockup(f: TransferFacts):
    if f.direction != SEND or not f.lockup_days or f.first_acquired_at is None:
        return None
    until = f.first_acquired_at + timedelta(days=f.lockup_days)
    if f.at < until:
        return RuleFailure(
            "lockup", f"Your units are locked up until {_day(until)} ({f.lockup_days} days after purchase)."
        )


INVESTOR_RULES = (_rule_kyc, _rule_sanctions, _rule_frozen)
ASSET_RULES = (
    _rule_quantity,
    _rule_country,
    _rule_accreditation,
    _rule_holding_limits,
    _rule_max_holders,
    _rule_lockup,
)


def _run(rules, facts: TransferFacts) -> EligibilityResult:
    failures: list[RuleFailure] = []
    for rule in rules:
        outcome = rule(facts)
        if outcome is None:
            continue
        failures.extend(outcome if isinstance(outcome, list) else [outcome])
    return EligibilityResult(failures)


def evaluate(facts: TransferFacts) -> EligibilityResult:
    """Every rule, every failure."""
    return _run(INVESTOR_RULES + ASSET_RULES, facts)


# Fact gathering (database) ----------------------------------------------------------


def _investor_facts(investor, at: datetime) -> dict:
    standing, frozen = investor_standing_for(investor, today=timezone.localdate(at))
    app = standing.application
    return {
        "kyc_state": standing.state,
        "kyc_expires_at": standing.expires_at,
        "sanctions_clear": standing.sanctions_clear,
        "frozen": frozen,
        "residence_country": str(app.country_of_residence or "") if app else "",
        "qualified_investor": bool(app and app.investor_category in KycApplication.QUALIFIED_CATEGORIES),
    }


def _asset_facts(asset) -> dict:
    """The asset's rules, as TransferFacts fields."""
    return {
        "allowed_countries": tuple(asset.allowed_countries or ()),
        "accreditation_required": asset.accreditation_required,
        "min_holding": asset.min_holding or 0,
        "max_holding": asset.max_holding,
        "max_holders": asset.max_holders,
        "lockup_days": asset.lockup_days or 0,
    }


def _transfer_facts(
    *, asset, quantity: int, direction: Direction, at, person: dict, holding, holder_count: int
) -> TransferFacts:
    return TransferFacts(
        direction=direction,
        quantity=quantity,
        at=at,
        **person,
        **_asset_facts(asset),
        # Units reserved by unsettled primary orders count toward limits when receiving,
        # never toward what can be sent.
        current_quantity=(holding.quantity + (holding.pending_quantity if direction == RECEIVE else 0))
        if holding
        else 0,
        first_acquired_at=holding.first_acquired_at if holding else None,
        holder_count=holder_count,
    )


def transfer_facts_gather(
    *, investor, asset, quantity: int, direction: Direction, holding, holder_count: int, at=None
) -> TransferFacts:
    """`holding`: the investor's holding of `asset` (None when they never held any);
    `holder_count`: how many investors hold settled or reserved units of it."""
    at = at or timezone.now()
    return _transfer_facts(
        asset=asset,
        quantity=quantity,
        direction=direction,
        at=at,
        person=_investor_facts(investor, at),
        holding=holding,
        holder_count=holder_count,
    )


def _check_direction(direction) -> None:
    if direction not in (RECEIVE, SEND):
        raise ValueError(f"direction must be 'receive' or 'send', not {direction!r}")


def transfer_check(
    *, investor, asset, quantity: int, direction: Direction, holding, holder_count: int, at=None
) -> EligibilityResult:
    """May `investor` receive (buy) or send (sell) `quantity` units of `asset` at `at`
    (default now)? `holding` and `holder_count` come from the caller's books (read, or
    locked in its transaction when it acts on the answer)."""
    _check_direction(direction)
    return evaluate(
        transfer_facts_gather(
            investor=investor,
            asset=asset,
            quantity=quantity,
            direction=direction,
            holding=holding,
            holder_count=holder_count,
            at=at,
        )
    )


@dataclass(frozen=True)
class TransferQuestion:
    asset: object
    quantity: int
    direction: Direction
    holding: object = None  # the investor's holding of `asset`, if any
    holder_count: int = 0


def transfer_check_many(*, investor, questions: list[TransferQuestion], at=None) -> list[EligibilityResult]:
    """`transfer_check` for many assets at once, reading the investor's standing once (two
    queries, whatever the number of questions): for pages that explain a button per
    asset. Answers in the order of `questions`."""
    if not questions:
        return []
    for question in questions:
        _check_direction(question.direction)
    at = at or timezone.now()
    person = _investor_facts(investor, at)
    return [
        evaluate(
            _transfer_facts(
                asset=q.asset,
                quantity=q.quantity,
                direction=q.direction,
                at=at,
                person=person,
                holding=q.holding,
                holder_count=q.holder_count,
            )
        )
        for q in questions
    ]


# What can change between accepting an order and signing its settlement: the person's
# standing and their eligibility for the asset. Quantity, holding limits and holder count
# were judged when the units were reserved (under the holding lock; a new holder of a
# capped asset also under the offering lock), and the reservation already counts in the
# holding, so they are not judged twice.
SETTLEMENT_RULES = INVESTOR_RULES + (_rule_country, _rule_accreditation)


def settlement_check(*, investor, asset, quantity: int, direction: Direction, at=None) -> EligibilityResult:
    """Just before a reserved transfer is signed: is the investor still allowed to take
    part (KYC not lapsed for a buyer, sanctions clear, not frozen, country and
    accreditation still fit the asset)?"""
    at = at or timezone.now()
    facts = TransferFacts(
        direction=direction, quantity=quantity, at=at, **_investor_facts(investor, at), **_asset_facts(asset)
    )
    return _run(SETTLEMENT_RULES, facts)


def investor_check(*, investor, direction: Direction, at=None) -> EligibilityResult:
    """Only the rules about the person (KYC, sanctions, freeze): may this investor buy or
    sell anything at all? Used by the dashboard before any asset is chosen."""
    at = at or timezone.now()
    facts = TransferFacts(direction=direction, quantity=1, at=at, **_investor_facts(investor, at))
    return _run(INVESTOR_RULES, facts)


def _rule_kyc_income(f: TransferFacts):
    """Income is paid to holders whose KYC is valid; a lapsed one is held until renewed."""
    if f.kyc_state == KycState.APPROVED:
        return None
    if f.kyc_state == KycState.EXPIRED:
        when = f" on {_day(f.kyc_expires_at)}" if f.kyc_expires_at else ""
        return RuleFailure(
            "kyc_expired", f"Your KYC verification expired{when}; the payment is held until you renew it."
        )
    return RuleFailure("kyc_not_approved", "Your identity is not verified (KYC); the payment is held until it is.")


INCOME_RULES = (_rule_kyc_income, _rule_sanctions, _rule_frozen)


def income_check_many(*, investor_ids, at=None) -> dict[int, EligibilityResult]:
    """May each investor be paid income (a distribution) now? The person's rules only:
    KYC valid, sanctions clear, not frozen. A constant number of queries for any number
    of investors."""
    at = at or timezone.now()
    ids = list(investor_ids)
    standings = kyc_standings_for_many(ids, today=timezone.localdate(at))
    frozen = frozen_user_ids(ids)
    results = {}
    for uid in ids:
        standing = standings[uid]
        facts = TransferFacts(
            direction=RECEIVE,
            quantity=1,
            at=at,
            kyc_state=standing.state,
            kyc_expires_at=standing.expires_at,
            sanctions_clear=standing.sanctions_clear,
            frozen=uid in frozen,
        )
        results[uid] = _run(INCOME_RULES, facts)
    return results
