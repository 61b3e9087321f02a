"""Algorand Standard Asset rules: create, opt-in, transfer, freeze, clawback, close-out,
reconfigure, destroy."""

import base64
import os

import pytest
from algosdk import account, transaction
from algosdk.error import AlgodHTTPError

from conftest import sign


def test_create_with_every_parameter(net, alice, bob):
    metadata = os.urandom(32)
    asset_id = net.create_asset(
        alice,
        total=5_000_000,
        decimals=6,
        default_frozen=True,
        unit_name="RWA",
        asset_name="Real World Asset",
        url="https://example.test/rwa",
        metadata_hash=metadata,
        manager=alice.address,
        reserve=bob.address,
        freeze=alice.address,
        clawback=bob.address,
    )

    params = net.client.asset_info(asset_id)["params"]
    assert params == {
        "creator": alice.address,
        "total": 5_000_000,
        "decimals": 6,
        "default-frozen": True,
        "unit-name": "RWA",
        "unit-name-b64": "UldB",
        "name": "Real World Asset",
        "name-b64": "UmVhbCBXb3JsZCBBc3NldA==",
        "url": "https://example.test/rwa",
        "url-b64": base64.b64encode(b"https://example.test/rwa").decode(),
        "metadata-hash": base64.b64encode(metadata).decode(),
        "manager": alice.address,
        "reserve": bob.address,
        "freeze": alice.address,
        "clawback": bob.address,
    }
    info = net.client.account_info(alice.address)
    assert info["assets"] == [{"amount": 5_000_000, "asset-id": asset_id, "is-frozen": False}]
    assert info["created-assets"][0]["index"] == asset_id
    assert info["min-balance"] == 200_000
    assert net.client.account_asset_info(alice.address, asset_id)["created-asset"] == params


def test_asset_ids_are_not_small_consecutive_integers(net, alice):
    first = net.create_asset(alice)
    second = net.create_asset(alice)
    assert first > 1000 and second > first


def test_empty_roles_and_names_are_omitted(net, alice):
    asset_id = net.create_asset(alice, unit_name="", asset_name="", manager="", reserve="", freeze="", clawback="")
    params = net.client.asset_info(asset_id)["params"]
    assert set(params) == {"creator", "total", "decimals", "default-frozen"}


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"asset_name": "n" * 33}, "asset name too big"),
        ({"unit_name": "u" * 9}, "unit name too big"),
        ({"url": "https://" + "u" * 89}, "url too big"),
        ({"decimals": 20}, "decimals is too high"),
    ],
)
def test_create_limits(net, alice, fields, match):
    txn = transaction.AssetConfigTxn(
        alice.address, net.params(), total=10, manager=alice.address, strict_empty_address_check=False
    )
    for key, value in fields.items():  # set afterwards: algosdk refuses some of these
        setattr(txn, key, value)
    net.reject(sign(txn, alice.sk), match=match)


def test_create_needs_min_balance_for_holding(net):
    creator = net.new_account(150_000)
    txn = transaction.AssetConfigTxn(creator.address, net.params(), total=1, strict_empty_address_check=False)
    net.reject(sign(txn, creator.sk), match="below min 200000")


def test_opt_in_transfer_and_errors(net, alice, bob):
    asset_id = net.create_asset(alice, total=100)
    _, stranger = account.generate_account()

    net.reject(
        net.axfer(alice, bob.address, 5, asset_id),
        match=f"receiver error: must optin, asset {asset_id} missing from {bob.address}",
    )
    net.reject(net.axfer(bob, alice.address, 5, asset_id), match=f"asset {asset_id} missing from {bob.address}")

    net.opt_in(bob, asset_id)
    net.opt_in(bob, asset_id)  # repeat is a no-op
    assert net.holding(bob.address, asset_id) == {"amount": 0, "asset-id": asset_id, "is-frozen": False}
    assert net.client.account_info(bob.address)["min-balance"] == 200_000

    net.send(net.axfer(alice, bob.address, 40, asset_id))
    assert net.holding(bob.address, asset_id)["amount"] == 40
    assert net.holding(alice.address, asset_id)["amount"] == 60

    net.reject(net.axfer(bob, alice.address, 41, asset_id), match="underflow on subtracting")
    net.reject(net.axfer(bob, stranger, 1, asset_id), match="must optin")


def test_opt_in_needs_min_balance(net, alice):
    asset_id = net.create_asset(alice)
    poor = net.new_account(150_000)
    net.reject(net.axfer(poor, poor.address, 0, asset_id), match="below min 200000")


def test_opt_in_to_missing_asset(net, alice):
    net.reject(net.axfer(alice, alice.address, 0, 999_999_999), match="does not exist")


def test_default_frozen_and_freeze(net, alice, bob):
    asset_id = net.create_asset(alice, default_frozen=True)
    net.opt_in(bob, asset_id)
    assert net.holding(bob.address, asset_id)["is-frozen"] is True
    # The creator's own holding is never frozen.
    assert net.holding(alice.address, asset_id)["is-frozen"] is False

    net.reject(net.axfer(alice, bob.address, 1, asset_id), match="asset frozen in recipient")

    not_freezer = transaction.AssetFreezeTxn(bob.address, net.params(), asset_id, bob.address, False)
    net.reject(sign(not_freezer, bob.sk), match="freeze not allowed")

    unfreeze = transaction.AssetFreezeTxn(alice.address, net.params(), asset_id, bob.address, False)
    net.send(sign(unfreeze, alice.sk))
    net.send(net.axfer(alice, bob.address, 10, asset_id))

    freeze = transaction.AssetFreezeTxn(alice.address, net.params(), asset_id, bob.address, True)
    net.send(sign(freeze, alice.sk))
    net.reject(net.axfer(bob, alice.address, 1, asset_id), match=f"asset {asset_id} frozen in {bob.address}")


def test_clawback_bypasses_freeze(net, alice, bob):
    carol = net.new_account(1_000_000)
    asset_id = net.create_asset(alice, default_frozen=True)
    net.opt_in(bob, asset_id)
    net.opt_in(carol, asset_id)

    def claw(sender, source, receiver, amount, **kwargs):
        return sign(
            transaction.AssetTransferTxn(
                sender.address, net.params(), receiver, amount, asset_id, revocation_target=source, **kwargs
            ),
            sender.sk,
        )

    net.send(claw(alice, alice.address, bob.address, 30))
    net.send(claw(alice, bob.address, carol.address, 10))
    assert net.holding(bob.address, asset_id) == {"amount": 20, "asset-id": asset_id, "is-frozen": True}
    assert net.holding(carol.address, asset_id)["amount"] == 10

    net.reject(claw(bob, bob.address, carol.address, 1), match="clawback not allowed")
    _, stranger = account.generate_account()
    net.reject(claw(alice, bob.address, stranger, 1), match="must optin")
    net.reject(
        claw(alice, bob.address, carol.address, 1, close_assets_to=alice.address),
        match="cannot close asset by clawback",
    )


def test_asset_close_to(net, alice, bob):
    carol = net.new_account(1_000_000)
    asset_id = net.create_asset(alice)
    net.opt_in(bob, asset_id)
    net.send(net.axfer(alice, bob.address, 25, asset_id))

    net.reject(net.axfer(bob, carol.address, 0, asset_id, close_assets_to=carol.address), match="must optin")
    net.reject(
        net.axfer(alice, bob.address, 0, asset_id, close_assets_to=bob.address),
        match="cannot close asset ID in allocating account",
    )

    net.opt_in(carol, asset_id)
    txid = net.send(net.axfer(bob, carol.address, 5, asset_id, close_assets_to=carol.address))

    assert net.client.pending_transaction_info(txid)["asset-closing-amount"] == 20
    assert net.holding(bob.address, asset_id) is None
    assert net.holding(carol.address, asset_id)["amount"] == 25
    assert net.client.account_info(bob.address)["min-balance"] == 100_000
    with pytest.raises(AlgodHTTPError):
        net.client.account_asset_info(bob.address, asset_id)


def test_frozen_holding_closes_only_to_creator(net, alice, bob):
    carol = net.new_account(1_000_000)
    asset_id = net.create_asset(alice)
    for holder in (bob, carol):
        net.opt_in(holder, asset_id)
    net.send(net.axfer(alice, bob.address, 7, asset_id))
    net.send(sign(transaction.AssetFreezeTxn(alice.address, net.params(), asset_id, bob.address, True), alice.sk))

    net.reject(net.axfer(bob, carol.address, 0, asset_id, close_assets_to=carol.address), match="frozen")
    net.send(net.axfer(bob, alice.address, 0, asset_id, close_assets_to=alice.address))
    assert net.holding(bob.address, asset_id) is None
    assert net.holding(alice.address, asset_id)["amount"] == 1_000


def test_reconfigure_by_manager_only_and_cleared_roles_stay_cleared(net, alice, bob):
    asset_id = net.create_asset(alice)

    def reconfigure(sender, **roles):
        txn = transaction.AssetConfigTxn(
            sender.address, net.params(), index=asset_id, strict_empty_address_check=False, **roles
        )
        return sign(txn, sender.sk)

    net.reject(reconfigure(bob, manager=bob.address, freeze=bob.address), match="should be issued by the manager")

    # Omitting freeze and clawback clears them.
    net.send(reconfigure(alice, manager=alice.address, reserve=bob.address))
    params = net.client.asset_info(asset_id)["params"]
    assert params["reserve"] == bob.address
    assert "freeze" not in params and "clawback" not in params

    # A cleared role cannot be set again.
    net.send(
        reconfigure(alice, manager=alice.address, reserve=bob.address, freeze=alice.address, clawback=alice.address)
    )
    params = net.client.asset_info(asset_id)["params"]
    assert "freeze" not in params and "clawback" not in params

    # Handing the manager role over, then nobody else can reconfigure.
    net.send(reconfigure(alice, manager=bob.address, reserve=bob.address))
    net.reject(reconfigure(alice, manager=alice.address, reserve=bob.address), match="should be issued by the manager")
    net.send(reconfigure(bob, reserve=bob.address))  # bob clears the manager role
    net.reject(reconfigure(bob, manager=bob.address, reserve=bob.address), match="should be issued by the manager")


def test_destroy(net, alice, bob):
    asset_id = net.create_asset(alice, total=50)
    net.opt_in(bob, asset_id)
    net.send(net.axfer(alice, bob.address, 1, asset_id))
    destroy = transaction.AssetDestroyTxn(alice.address, net.params(), asset_id)
    net.reject(sign(destroy, alice.sk), match="cannot destroy asset")

    not_manager = transaction.AssetDestroyTxn(bob.address, net.params(), asset_id)
    net.reject(sign(not_manager, bob.sk), match="should be issued by the manager")

    net.send(net.axfer(bob, alice.address, 1, asset_id))
    net.send(sign(transaction.AssetDestroyTxn(alice.address, net.params(), asset_id), alice.sk))
    with pytest.raises(AlgodHTTPError) as excinfo:
        net.client.asset_info(asset_id)
    assert excinfo.value.code == 404
    info = net.client.account_info(alice.address)
    assert info["created-assets"] == [] and net.holding(alice.address, asset_id) is None
    assert info["min-balance"] == 100_000


def test_asset_group_swap_is_atomic(net, alice, bob):
    """Delivery-versus-payment: asset one way, algos the other, or nothing."""
    asset_id = net.create_asset(alice, total=10)
    net.opt_in(bob, asset_id)
    sp = net.params()
    deliver = transaction.AssetTransferTxn(alice.address, sp, bob.address, 10, asset_id)
    pay = transaction.PaymentTxn(bob.address, sp, alice.address, 20_000_000)  # too much
    transaction.assign_group_id([deliver, pay])
    net.reject(sign(deliver, alice.sk), sign(pay, bob.sk), match="overspend")
    assert net.holding(bob.address, asset_id)["amount"] == 0

    deliver = transaction.AssetTransferTxn(alice.address, sp, bob.address, 10, asset_id)
    pay = transaction.PaymentTxn(bob.address, sp, alice.address, 1_000_000)
    transaction.assign_group_id([deliver, pay])
    net.send(sign(deliver, alice.sk), sign(pay, bob.sk))
    assert net.holding(bob.address, asset_id)["amount"] == 10
