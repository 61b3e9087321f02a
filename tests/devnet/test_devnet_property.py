"""Property: random valid and invalid groups never create or destroy value.

Over a closed universe of accounts (dispenser, fee sink, a few users) the total of
microAlgos (fees land in the fee sink) and every asset's total units are constant,
and a rejected group changes nothing at all, not even the round.
"""

import base64

import pytest
from algosdk import encoding, transaction
from algosdk.error import AlgodHTTPError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Net, sign
from devnet.testing import DevnetProcess

USERS = 4
OUTCOMES = {"accepted": 0, "rejected": 0}


@pytest.fixture(scope="module")
def universe(tmp_path_factory):
    proc = DevnetProcess(tmp_path_factory.mktemp("devnet-property")).start()
    net = Net(proc)
    users = [net.new_account(amount) for amount in (3_000_000, 2_000_000, 1_000_000, 500_000)]
    assets = [net.create_asset(users[0], total=1_000), net.create_asset(users[0], total=500, default_frozen=True)]
    for aid in assets:
        for user in users[1:3]:
            net.opt_in(user, aid)
    addresses = [u.address for u in users] + [net.genesis["dispenser"]["address"], net.genesis["fee_sink"]]
    yield net, users, assets, addresses
    proc.stop()
    # The property is only meaningful if both paths were exercised.
    assert OUTCOMES["accepted"] > 0 and OUTCOMES["rejected"] > 0, OUTCOMES


def snapshot(net: Net, addresses) -> dict:
    state = {"round": net.client.status()["last-round"]}
    for addr in addresses:
        info = net.client.account_info(addr)
        info.pop("round")
        state[addr] = info
    return state


user_index = st.integers(0, USERS - 1)
amounts = st.sampled_from([0, 1, 1_000, 99_999, 100_000, 400_000, 2_500_000])
units = st.sampled_from([0, 1, 7, 300, 600, 2_000])
ops = st.one_of(
    st.tuples(st.just("pay"), user_index, user_index, amounts, st.booleans()),
    st.tuples(st.just("axfer"), user_index, user_index, units, st.booleans()),
    st.tuples(st.just("optin"), user_index, st.just(0), st.just(0), st.booleans()),
    st.tuples(st.just("freeze"), user_index, user_index, st.just(0), st.booleans()),
    st.tuples(st.just("clawback"), user_index, user_index, units, st.booleans()),
)
corruptions = st.sampled_from([None, None, None, "bad-sig", "expired", "wrong-genesis", "drop-group", "lone-member"])


def build(net, users, assets, op, asset_pick, fee, sp):
    kind, i, j, amount, flag = op
    sender, other = users[i], users[j]
    aid = assets[asset_pick]
    sp = transaction.SuggestedParams(fee, sp.first, sp.last, sp.gh, sp.gen, flat_fee=True)
    if kind == "pay":
        close = other.address if flag and i != j else None
        return transaction.PaymentTxn(sender.address, sp, other.address, amount, close_remainder_to=close), sender.sk
    if kind == "axfer":
        close = other.address if flag and i != j else None
        return transaction.AssetTransferTxn(
            sender.address, sp, other.address, amount, aid, close_assets_to=close
        ), sender.sk
    if kind == "optin":
        return transaction.AssetTransferTxn(sender.address, sp, sender.address, 0, aid), sender.sk
    if kind == "freeze":
        freezer = users[0] if flag else sender
        return transaction.AssetFreezeTxn(freezer.address, sp, aid, other.address, flag), freezer.sk
    return transaction.AssetTransferTxn(
        users[0].address, sp, other.address, amount, aid, revocation_target=sender.address
    ), users[0].sk


@settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    group=st.lists(st.tuples(ops, st.integers(0, 1), st.sampled_from([0, 1000, 2500])), min_size=1, max_size=5),
    corruption=corruptions,
    victim=st.integers(0, 4),
    note=st.binary(max_size=4),
)
def test_value_is_conserved_and_rejections_change_nothing(universe, group, corruption, victim, note):
    net, users, assets, addresses = universe
    before = snapshot(net, addresses)
    sp = net.client.suggested_params()
    txns, keys = [], []
    for op, asset_pick, fee in group:
        txn, sk = build(net, users, assets, op, asset_pick, fee, sp)
        txn.note = note or None
        txns.append(txn)
        keys.append(sk)
    victim %= len(txns)
    if corruption == "expired":
        txns[victim].first_valid_round = sp.first - 20
        txns[victim].last_valid_round = sp.first - 10
    elif corruption == "wrong-genesis":
        txns[victim].genesis_hash = base64.b64encode(bytes(32 * [1])).decode()
    if len(txns) > 1:
        transaction.assign_group_id(txns)
    signed = [sign(t, sk) for t, sk in zip(txns, keys, strict=True)]
    if corruption == "bad-sig":
        signed[victim].signature = base64.b64encode(bytes(64)).decode()
    elif corruption == "drop-group" and len(signed) > 1:
        signed.pop(victim)
    elif corruption == "lone-member" and len(signed) > 1:
        signed = [signed[victim]]

    try:
        net.client.send_raw_transaction(
            base64.b64encode(b"".join(base64.b64decode(encoding.msgpack_encode(s)) for s in signed))
        )
        accepted = True
    except AlgodHTTPError as exc:
        assert exc.code == 400, exc
        accepted = False

    after = snapshot(net, addresses)
    total_algos = sum(after[a]["amount"] for a in addresses)
    assert total_algos == sum(before[a]["amount"] for a in addresses)
    for aid in assets:
        held = sum(h["amount"] for a in addresses for h in after[a]["assets"] if h["asset-id"] == aid)
        assert held == net.client.asset_info(aid)["params"]["total"]
    OUTCOMES["accepted" if accepted else "rejected"] += 1
    if accepted:
        assert corruption is None or (corruption in ("drop-group", "lone-member") and len(txns) == 1)
        assert after["round"] == before["round"] + 1
    else:
        assert after == before
