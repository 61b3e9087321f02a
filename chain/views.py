"""Our own small block explorer for a network without one (the devnet): a transaction
and an asset as algod reports them. Links come from chain.explorer."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import explorer, gateway


@login_required
def tx_detail(request: HttpRequest, txid: str) -> HttpResponse:
    context: dict = {"txid": txid}
    if not explorer.is_txid(txid):
        context["problem"] = (
            "This is not an Algorand transaction id: an id has 52 characters, capital letters A–Z and digits 2–7."
        )
        return render(request, "chain/tx.html", context, status=404)
    try:
        context["tx"], context["ours"] = explorer.tx_lookup(txid)
    except explorer.TxUnknown:
        context["problem"] = "The Algorand node does not know this transaction, and it is not one of ours."
        return render(request, "chain/tx.html", context, status=404)
    except gateway.AlgodError:
        context["problem"] = "The Algorand node cannot be reached right now; try again in a minute."
        return render(request, "chain/tx.html", context, status=503)
    return render(request, "chain/tx.html", context)


@login_required
def asset_detail(request: HttpRequest, asset_id: int) -> HttpResponse:
    context: dict = {"asset_id": asset_id}
    if not 0 < asset_id <= explorer.MAX_ASSET_ID:
        context["problem"] = "This is not an Algorand asset id."
        return render(request, "chain/asset.html", context, status=404)
    try:
        context["params"] = gateway.asset_params(asset_id)
    except gateway.AlgodError as exc:
        if exc.status == 404:
            context["problem"] = "The Algorand node does not know this asset."
            return render(request, "chain/asset.html", context, status=404)
        context["problem"] = "The Algorand node cannot be reached right now; try again in a minute."
        return render(request, "chain/asset.html", context, status=503)
    return render(request, "chain/asset.html", context)
