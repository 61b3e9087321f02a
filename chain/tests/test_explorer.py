"""Defect 12 of issue 15: transaction ids and asset ids link to the network's block
explorer, or (none configured: the devnet) to our own pages that read algod."""

from unittest import mock

import pytest
from django.template import Context, Template
from django.urls import reverse

from accounts.tests.factories import UserFactory
from chain import gateway
from chain.models import ChainTransaction

pytestmark = pytest.mark.django_db

TXID = "A" * 50 + "27"
SENDER, RECEIVER = "S" * 58, "R" * 58


def _render(text: str, **context) -> str:
    return Template("{% load chain_links %}" + text).render(Context(context))


def test_without_an_explorer_ids_link_to_our_own_pages(settings):
    settings.ALGOD_EXPLORER_TX_URL = settings.ALGOD_EXPLORER_ASSET_URL = ""
    html = _render('{% txid_link txid id="order-txid" %} {% asset_link 1234 %}', txid=TXID)
    assert f'href="/chain/tx/{TXID}/"' in html and 'href="/chain/asset/1234/"' in html
    assert f'id="order-txid" title="{TXID}">{TXID}</code>' in html  # full value kept, shortened by CSS
    assert f'data-copy="{TXID}"' in html and "copy-button" in html


def test_a_configured_explorer_gets_the_links(settings):
    settings.ALGOD_EXPLORER_TX_URL = "https://explorer.example/tx/{txid}"
    settings.ALGOD_EXPLORER_ASSET_URL = "https://explorer.example/asset/{asset_id}"
    html = _render("{% txid_link txid %} {% asset_link 77 %}", txid=TXID)
    assert f'href="https://explorer.example/tx/{TXID}"' in html and 'href="https://explorer.example/asset/77"' in html


def test_a_value_that_is_not_a_txid_is_shown_but_not_linked():
    html = _render("{% txid_link txid %}", txid="<script>")
    assert "<a " not in html and "&lt;script&gt;" in html


@pytest.fixture
def signed_in(client):
    client.force_login(UserFactory())
    return client


def test_the_transaction_page_needs_a_sign_in(client):
    response = client.get(reverse("chain:tx", args=[TXID]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("bad", ["abc", "a" * 52, "A" * 51 + "1", "A" * 53, "A" * 51 + "=", "%00" * 3])
def test_a_malformed_txid_is_a_404_with_a_message(signed_in, bad):
    with mock.patch.object(gateway, "pending_info") as pending:
        response = signed_in.get(f"/chain/tx/{bad}/")
    assert response.status_code == 404
    assert "not an Algorand transaction id" in response.content.decode()
    pending.assert_not_called()


def test_an_unknown_txid_says_so(signed_in):
    with mock.patch.object(gateway, "pending_info", return_value=None):
        response = signed_in.get(reverse("chain:tx", args=[TXID]))
    assert response.status_code == 404 and "does not know this transaction" in response.content.decode()


def test_algod_unreachable_is_a_clear_message_not_a_500(signed_in, settings):
    settings.ALGOD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    response = signed_in.get(reverse("chain:tx", args=[TXID]))
    assert response.status_code == 503 and "cannot be reached" in response.content.decode()


def test_the_page_shows_round_sender_receiver_asset_and_amount(signed_in):
    info = {
        "confirmed-round": 314,
        "pool-error": "",
        "txn": {
            "sig": "x",
            "txn": {"type": "axfer", "snd": SENDER, "arcv": RECEIVER, "aamt": 5, "xaid": 1001, "fee": 1000},
        },
    }
    with mock.patch.object(gateway, "pending_info", return_value=info):
        page = signed_in.get(reverse("chain:tx", args=[TXID])).content.decode()
    assert 'id="tx-round">314<' in page and "Asset transfer" in page
    assert SENDER in page and RECEIVER in page and 'href="/chain/asset/1001/"' in page and ">5 units<" in page


def test_a_transaction_algod_forgot_is_shown_from_our_record(signed_in):
    ChainTransaction.objects.create(
        kind="asset_transfer", payload={}, idempotency_key="k", status="confirmed", txid=TXID, confirmed_round=99
    )
    with mock.patch.object(gateway, "pending_info", return_value=None):
        response = signed_in.get(reverse("chain:tx", args=[TXID]))
    assert response.status_code == 200 and 'id="tx-round">99<' in response.content.decode()


def test_the_asset_page_reads_algod(signed_in):
    params = gateway.AssetParams(
        total=10_000,
        decimals=0,
        default_frozen=True,
        url="https://x/arc3",
        metadata_hash="ab" * 32,
        creator=SENDER,
        reserve=None,
        manager=SENDER,
        freeze=SENDER,
        clawback=SENDER,
    )
    with mock.patch.object(gateway, "asset_params", return_value=params):
        page = signed_in.get(reverse("chain:asset", args=[1001])).content.decode()
    assert "10,000" in page and "ab" * 32 in page
    with mock.patch.object(gateway, "asset_params", side_effect=gateway.AlgodRejected("asset does not exist", 404)):
        response = signed_in.get(reverse("chain:asset", args=[1001]))
    assert response.status_code == 404 and "does not know this asset" in response.content.decode()


def test_pages_link_txids_and_asset_ids(signed_in, settings):
    """The order page, asset page and back office use the tag (a template grep would miss a
    page that prints the id raw)."""
    from pathlib import Path

    root = Path(settings.BASE_DIR)
    for name in [
        "marketplace/templates/marketplace/order_detail.html",
        "marketplace/templates/marketplace/trade/trade_detail.html",
        "marketplace/templates/marketplace/portfolio.html",
        "assets/templates/assets/detail.html",
    ]:
        text = (root / name).read_text()
        assert "chain_tx.txid }}" not in text and "{{ asset.asa_id }}</code>" not in text, name
