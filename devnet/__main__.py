"""``python -m devnet serve [--host H] [--port P] [--data-dir DIR] [--token T] [--fsync]``"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import cast

from devnet.server import DEFAULT_TOKEN, Devnet, make_server


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    devnet = Devnet(Path(args.data_dir), fsync=args.fsync)
    server = make_server(devnet, args.host, args.port, args.token)
    # An AF_INET server's address is (str, int); typeshed allows bytes for the host.
    host, port = cast(tuple[str, int], server.server_address[:2])

    def stop(signum, frame):
        # shutdown() blocks until serve_forever returns, so call it off the main thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    genesis = devnet.genesis
    print(
        "devnet: algod-compatible development ledger (NOT a real Algorand network)\n"
        f"  url:        http://{host}:{port}\n"
        f"  token:      {args.token}\n"
        f"  genesis:    {genesis.genesis_id} {genesis.genesis_hash.hex()[:16]}...\n"
        f"  dispenser:  {Path(args.data_dir) / 'genesis.json'} (address and mnemonic)\n"
        f"  last round: {devnet.ledger.last_round} ({devnet.replayed} journal records "
        "replayed)",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        devnet.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devnet")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the devnet HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=4001)
    serve.add_argument("--data-dir", default=".devnet", help="state directory (default .devnet)")
    serve.add_argument("--token", default=DEFAULT_TOKEN, help="API token (default: the LocalNet token, 64 x 'a')")
    serve.add_argument("--fsync", action="store_true", help="fsync the journal after every group (survives power loss)")
    serve.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
