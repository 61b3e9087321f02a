// Form errors (422) and the rate limit (429) come back as page fragments meant to be
// shown: let HTMX swap them in like a success instead of dropping them. Loaded on every
// page (base.html): the order form, withdrawals and the verify panel rely on it.
// A 503 (database briefly unavailable, config/db_unavailable.py) is a notice the server
// retargets to the top of the page, so the form and its idempotency key stay as they were.
document.body.addEventListener("htmx:beforeSwap", function (evt) {
  var status = evt.detail.xhr.status;
  if (status === 422 || status === 429 || status === 503) {
    evt.detail.shouldSwap = true;
    evt.detail.isError = false;
  }
});
