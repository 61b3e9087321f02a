"""devnet: an algod-compatible development ledger for payments and ASAs.

Run it with ``python -m devnet serve``; see devnet/README.md. Test helpers live in
``devnet.testing``.
"""
