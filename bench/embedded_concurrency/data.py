"""Seeds and checks the database of an embedded-mode server (run in a subprocess with the
server's settings and RWA_VAR_DIR):

    python -m bench.embedded_concurrency.data seed '[{"prefix": "many", "investors": 20, "deposit_minor": 10000}]'
        -> {"many": {"many-0@bench.rwa": "<sessionid>", ...}}   (deposits in EUR, signed-in sessions)
    python -m bench.embedded_concurrency.data check many one
        -> {"many": {"available": [...], "held": [...], "withdrawals": [...]}, ..., "ledger_problems": [...]}
"""

import json
import os
import sys


def seed(groups: list[dict]) -> dict:
    from django.test import Client

    from accounts.models import User
    from marketplace.services import deposit_record
    from marketplace.tests.factories import usable_payout_account

    staff = User.objects.filter(email="bench-staff@bench.rwa").first() or User.objects.create_superuser(
        "bench-staff@bench.rwa", None, full_name="Bench Staff"
    )
    out = {}
    for group in groups:
        sessions = out[group["prefix"]] = {}
        for i in range(group["investors"]):
            email = f"{group['prefix']}-{i}@bench.rwa"
            investor = User.objects.create_user(email, None, full_name=f"Bench {i}")  # signed in below, no password
            deposit_record(
                investor=investor,
                amount_minor=group["deposit_minor"],
                currency="EUR",
                bank_reference=f"BENCH-{email}",
                actor=staff,
            )
            account = usable_payout_account(investor)  # past its cooling-off: a withdrawal names one
            client = Client()
            client.force_login(investor)
            # "<session id> <payout account id>": what a signed-in browser's form carries
            sessions[email] = f"{client.cookies['sessionid'].value} {account.public_id}"
    return out


def check(prefixes: list[str]) -> dict:
    from accounts.models import User
    from marketplace.ledger_proofs import ledger_verify
    from marketplace.models import Withdrawal
    from marketplace.selectors import cash_balances

    out = {}
    for prefix in prefixes:
        rows = out[prefix] = {"available": [], "held": [], "withdrawals": []}
        for user in User.objects.filter(email__startswith=f"{prefix}-").order_by("pk"):
            balance = next((b for b in cash_balances(user=user) if b.currency == "EUR"), None)
            rows["available"].append(balance.available_minor if balance else 0)
            rows["held"].append(balance.held_minor if balance else 0)
            rows["withdrawals"].append(Withdrawal.objects.filter(investor=user).count())
    out["ledger_problems"] = [str(p) for p in ledger_verify().problems]
    return out


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.embedded_concurrency.settings")
    import django

    django.setup()
    command, args = sys.argv[1], sys.argv[2:]
    result = seed(json.loads(args[0])) if command == "seed" else check(args)
    print(json.dumps(result))
