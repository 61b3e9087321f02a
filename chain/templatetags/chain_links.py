"""Transaction ids, asset ids and hashes in pages.

{% txid_link txid id="order-txid" class="order-txid" %}: the txid, shortened on screen
(CSS; the full text stays in the page, its title and the copy button), linked to the
network's block explorer or our own transaction page (chain.explorer), with a copy
button (static/js/copy.js shows and runs it).
{% asset_link asa_id id="asa-id" %}: the asset id, linked the same way.
{% hash_copy value label="SHA-256" %}: a long hash or address, shortened, with a copy
button and no link."""

from django import template
from django.utils.html import format_html

from chain import explorer

register = template.Library()


def _code(value: str, *, id: str, css: str) -> str:
    return format_html(
        '<code class="hash{}"{} title="{}">{}</code>',
        f" {css}" if css else "",
        format_html(' id="{}"', id) if id else "",
        value,
        value,
    )


def _copy(value: str, label: str) -> str:
    return format_html(
        '<button type="button" class="secondary outline small copy-button" data-copy="{}" aria-label="Copy {}" title="Copy {}" hidden>'
        "Copy</button>",
        value,
        label,
        label,
    )


@register.simple_tag
def hash_copy(value, label: str = "value", id: str = "", **kwargs) -> str:
    value = str(value or "")
    if not value:
        return "—"
    return format_html(
        '<span class="hash-copy">{}{}</span>', _code(value, id=id, css=kwargs.get("class", "")), _copy(value, label)
    )


@register.simple_tag
def txid_link(txid, id: str = "", **kwargs) -> str:
    txid = str(txid or "")
    if not txid:
        return "—"
    code = _code(txid, id=id, css=kwargs.get("class", ""))
    if not explorer.is_txid(txid):
        return format_html('<span class="hash-copy">{}{}</span>', code, _copy(txid, "transaction id"))
    return format_html(
        '<span class="hash-copy"><a class="chain-link" href="{}">{}</a>{}</span>',
        explorer.tx_url(txid),
        code,
        _copy(txid, "transaction id"),
    )


@register.simple_tag
def asset_link(asset_id, id: str = "", **kwargs) -> str:
    if asset_id in (None, ""):
        return "—"
    try:
        number = int(asset_id)
    except (TypeError, ValueError):
        return str(asset_id)
    return format_html(
        '<a class="chain-link asset-link{}" href="{}"><code{}>{}</code></a>',
        f" {kwargs['class']}" if kwargs.get("class") else "",
        explorer.asset_url(number),
        format_html(' id="{}"', id) if id else "",
        number,
    )
