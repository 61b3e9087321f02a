import io

import pytest
from django.core.management import call_command

from accounts.models import User
from chain import gateway
from chain.models import ChainAccount, ChainTransaction

from .conftest import process, secrets_of, transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    admin = User.objects.create_superuser("ops@example.com", "x-Long-passw0rd")
    client.force_login(admin)
    return client


def test_admin_pages_show_status_and_balances_but_never_keys(
    staff_client, chain_platform, minted_asset, investor_account
):
    row = process(transfer(minted_asset, chain_platform["treasury"].address, investor_account.address, 2))
    failed = process(transfer(minted_asset, chain_platform["treasury"].address, investor_account.address, 99_999))
    pages = [
        staff_client.get("/backoffice/chain/chaintransaction/"),
        staff_client.get(f"/backoffice/chain/chaintransaction/{row.pk}/change/"),
        staff_client.get(f"/backoffice/chain/chaintransaction/{failed.pk}/change/"),
        staff_client.get("/backoffice/chain/chainaccount/"),
        staff_client.get(f"/backoffice/chain/chainaccount/{investor_account.pk}/change/"),
        staff_client.get(f"/backoffice/chain/chainaccount/{chain_platform['clawback'].pk}/change/"),
    ]
    assert all(p.status_code == 200 for p in pages)
    html = "".join(p.content.decode() for p in pages)
    assert row.txid in html and "underflow" in html and f"ASA {minted_asset}: 2 (frozen)" in html
    for account in ChainAccount.objects.all():
        for secret in secrets_of(account):
            assert secret not in html
    assert "key_ciphertext" not in html and "wrapped_data_key" not in html
    # Balances in ALGO with six decimals, computed in integers: live in the list for the
    # platform's accounts, on its own page for an investor's account.
    clawback_micro = gateway.account_info(chain_platform["clawback"].address)["amount"]
    clawback_text = f"{clawback_micro // 1_000_000:,}.{clawback_micro % 1_000_000:06d}"
    assert clawback_text in pages[3].content.decode() and clawback_text in pages[5].content.decode()
    investor_micro = gateway.account_info(investor_account.address)["amount"]
    assert (
        "on the account&#x27;s page" in pages[3].content.decode()
        or "on the account's page" in pages[3].content.decode()
    )
    assert f"{investor_micro // 1_000_000:,}.{investor_micro % 1_000_000:06d}" in pages[4].content.decode()

    response = staff_client.post(
        "/backoffice/chain/chaintransaction/",
        {"action": "retry_failed", "_selected_action": [failed.pk, row.pk]},
        follow=True,
    )
    assert response.status_code == 200
    failed.refresh_from_db()
    assert failed.status == "pending" and "ops@example.com" in failed.last_error
    assert ChainTransaction.objects.get(pk=row.pk).status == "confirmed"


def test_chain_bootstrap_is_idempotent(chain_platform):
    out = io.StringIO()
    call_command("chain_bootstrap", stdout=out)
    assert "platform accounts ready" in out.getvalue()
    assert ChainAccount.objects.exclude(role="investor").count() == 5
    for role in ("treasury", "manager", "freeze", "clawback", "funding"):
        assert chain_platform[role].address in out.getvalue()


def test_rotate_keys_rewraps_under_the_new_master_key(settings, chain_platform, investor_account, minted_asset):
    import base64

    old = settings.CUSTODY_MASTER_KEYS
    settings.CUSTODY_MASTER_KEYS = old + ";test-2:" + base64.b64encode(b"N" * 32).decode()
    settings.CUSTODY_ACTIVE_KEY_ID = "test-2"
    out = io.StringIO()
    call_command("rotate_keys", stdout=out)
    assert "re-wrapped 6 key(s) under 'test-2'; 0 left" in out.getvalue()
    # Only the new key configured: signing still works.
    settings.CUSTODY_MASTER_KEYS = "test-2:" + base64.b64encode(b"N" * 32).decode()
    row = process(transfer(minted_asset, chain_platform["treasury"].address, investor_account.address, 1))
    assert row.status == "confirmed", row.last_error


def test_a_hanging_algod_costs_the_account_list_one_timeout_not_one_per_row(staff_client, chain_platform, settings):
    import socket
    import threading

    from chain.admin import ChainAccountAdmin

    # A node that accepts connections and never answers.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []

    def accept():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    settings.ALGOD_URL = f"http://127.0.0.1:{server.getsockname()[1]}"
    settings.ALGOD_TIMEOUT_SECONDS = 1
    ChainAccountAdmin._algod_failed_at = None
    try:
        html = staff_client.get("/backoffice/chain/chainaccount/").content.decode()
    finally:
        ChainAccountAdmin._algod_failed_at = None
        server.close()
        for conn in accepted:
            conn.close()
    assert html.count("unavailable:") == 5  # the five platform accounts
    assert len(accepted) == 1  # one attempt; the breaker answered the other four rows
