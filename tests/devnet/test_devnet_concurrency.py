"""Many clients at once: every accepted group gets its own round, no lost updates,
and a double spend is accepted exactly once."""

import threading
from concurrent.futures import ThreadPoolExecutor

from algosdk import account, transaction
from algosdk.error import AlgodHTTPError

from conftest import sign


def test_concurrent_submitters(net):
    senders = [net.new_account(2_000_000) for _ in range(8)]
    _, sink = account.generate_account()
    net.send(net.pay(senders[0], sink, 100_000))
    per_sender = 10

    def work(sender):
        client = net.proc.client()
        sp = client.suggested_params()
        txids = []
        for i in range(per_sender):
            txn = transaction.PaymentTxn(sender.address, sp, sink, 1_000, note=bytes([i]))
            txids.append(client.send_transaction(sign(txn, sender.sk)))
        return txids

    with ThreadPoolExecutor(len(senders)) as pool:
        txids = [t for batch in pool.map(work, senders) for t in batch]

    rounds = [net.client.pending_transaction_info(t)["confirmed-round"] for t in txids]
    assert len(set(rounds)) == len(txids)  # one round per accepted group
    assert net.balance(sink) == 100_000 + len(txids) * 1_000
    for sender in senders[1:]:
        assert net.balance(sender.address) == 2_000_000 - per_sender * 2_000


def test_double_spend_race_accepts_exactly_one(net):
    spender = net.new_account(1_000_000)
    receivers = [account.generate_account()[1] for _ in range(8)]
    sp = net.params()
    # Each payment alone is affordable, any two together are not.
    signed = [sign(transaction.PaymentTxn(spender.address, sp, r, 800_000), spender.sk) for r in receivers]
    barrier = threading.Barrier(len(signed))
    outcomes = []

    def submit(stxn):
        client = net.proc.client()
        barrier.wait()
        try:
            client.send_transaction(stxn)
            outcomes.append("ok")
        except AlgodHTTPError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=submit, args=(s,)) for s in signed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes.count("ok") == 1
    assert all("overspend" in o or "below min" in o for o in outcomes if o != "ok")
    assert sum(net.balance(r) for r in receivers) == 800_000
