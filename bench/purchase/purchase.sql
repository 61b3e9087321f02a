-- pgbench replay of one steady-state marketplace.services.order_place (holding and
-- ledger accounts exist): the statements it sends, in its order, with its row locks, in
-- one transaction (the offering's lock last, by its conditional UPDATE). Run by
-- bench/purchase/run.py with
--   -D inv_lo=… -D inv_n=… -D off_lo=… -D off_n=… -D qmax=…
-- Differences from the Django run, all in the database's favour or neutral: values the
-- service computes in Python (totals, ids, keys) are pgbench variables or SQL
-- expressions; timestamps are now(); the ledger-account lock returns its rows through an
-- aggregate (same rows, same FOR UPDATE, same pk order) so \gset gets one row; no
-- Python-side checks (cash, eligibility rules) and no Celery enqueue after commit.
\set inv random(:inv_lo, :inv_lo + :inv_n - 1)
\set off random(:off_lo, :off_lo + :off_n - 1)
\set q random(1, :qmax)
\set r1 random(0, 9223372036854775806)
\set r2 random(0, 9223372036854775806)
BEGIN;
-- the offering with its asset, read without a lock (marketplace.locks.offering_read; order_place prices and checks from this reading)
SELECT t.id, t.public_id, t.asset_id AS asset, t.price_per_fraction_minor AS price, t.currency AS cur, t.fractions_for_sale, t.fractions_sold AS sold, t.min_purchase AS min_p, t.max_purchase AS max_p, t.fee_bps AS fee_bps, t.opens_at, t.closes_at, t.status AS ostatus, t.created_at, t.updated_at, a.id AS a_id, a.public_id AS a_public_id, a.issuer_id, a.name, a.category, a.description, a.location, a.country, a.valuation_minor, a.valuation_date, a.currency AS a_currency, a.total_fractions, a.unit_name AS unit, a.asset_name, a.price_per_fraction_minor AS a_price, a.fractions_for_sale AS a_for_sale, a.min_purchase AS a_min, a.max_purchase AS a_max, a.offering_opens_at, a.offering_closes_at, a.allowed_countries, a.accreditation_required, a.min_holding, a.max_holding, a.max_holders, a.lockup_days, a.status AS a_status, a.review_comment, a.reviewed_by_id, a.reviewed_at, a.submitted_at, a.failure_reason, a.metadata_json, a.metadata_hash, a.asa_id AS asa, a.creation_txid, a.creation_round, a.live_at, a.created_at AS a_created_at, a.updated_at AS a_updated_at FROM marketplace_offering t JOIN assets_asset a ON a.id = t.asset_id WHERE t.id = :off \gset
-- holding_lock (marketplace.locks._rows_locked)
SELECT * FROM marketplace_holding WHERE (investor_id = :inv AND asset_id = :asset) ORDER BY id FOR UPDATE \gset h_
-- ledger_accounts_lock (available, held; pk order)
WITH locked AS (SELECT * FROM marketplace_ledgeraccount WHERE (kind = 'investor_available' AND currency = ':cur' AND user_id = :inv) OR (kind = 'investor_held' AND currency = ':cur' AND user_id = :inv) ORDER BY id FOR UPDATE)
SELECT max(id) FILTER (WHERE kind = 'investor_available') AS available, max(id) FILTER (WHERE kind = 'investor_held') AS held, max(balance) FILTER (WHERE kind = 'investor_available') AS available_balance FROM locked \gset
-- idempotency check (behind the cash lock)
SELECT * FROM marketplace_primaryorder WHERE investor_id = :inv AND idempotency_key = md5('key:' || :r1 || ':' || :r2);
-- eligibility_check: the investor's standing, KYC and freeze in one statement (compliance.selectors._STANDING_SQL); no holder count (no cap on holders)
SELECT id, user_id, status, screening_status, expires_at, country_of_residence, investor_category, (SELECT frozen FROM compliance_investorprofile WHERE user_id = :inv) AS profile_frozen FROM compliance_kycapplication WHERE user_id = :inv ORDER BY created_at DESC, id DESC LIMIT 20;
\set gross :q * :price
\set fee (:gross * :fee_bps + 5000) / 10000
\set total :gross + :fee
-- chain.selectors.treasury_and_investor_account (one written-out query; outbox_request reuses the rows)
SELECT max(a.address) FILTER (WHERE a.role = 'treasury') AS treasury_addr, max(a.address) FILTER (WHERE a.user_id = :inv) AS investor_addr FROM (SELECT * FROM chain_chainaccount WHERE role = 'treasury' OR user_id = :inv) a \gset
-- chain.services._insert_unless_taken: the outbox row, no savepoint (ON CONFLICT on the idempotency key)
INSERT INTO chain_chaintransaction (kind, payload, idempotency_key, status, generation, txid, group_txids, lease_txids, signed_bytes, first_valid_round, last_valid_round, confirmed_round, asset_id, attempts, last_error, on_confirmed, on_failed, before_sign, next_attempt_at, claimed_until, created_at, updated_at, submitted_at, confirmed_at, failed_at) VALUES ('asset_transfer', '{"asset_id": :asa, "sender": ":treasury_addr", "receiver": ":investor_addr", "amount": :q}'::jsonb, 'primary-order:' || md5('order:' || :r1 || ':' || :r2)::uuid::text, 'pending', 0, '', '[]'::jsonb, '[]'::jsonb, NULL, NULL, NULL, NULL, NULL, 0, '', 'marketplace.services.order_settlement_confirmed', 'marketplace.services.order_settlement_failed', 'marketplace.services.order_settlement_guard', now(), NULL, now(), now(), NULL, NULL, NULL) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id AS chain_tx \gset
INSERT INTO "marketplace_primaryorder" ("public_id", "investor_id", "offering_id", "asset_id", "idempotency_key", "quantity", "price_per_fraction_minor", "gross_minor", "fee_minor", "total_minor", "currency", "status", "chain_tx_id", "failure_reason", "created_at", "settled_at", "refunded_at") VALUES (md5('order:' || :r1 || ':' || :r2)::uuid, :inv, :off, :asset, md5('key:' || :r1 || ':' || :r2), :q, :price, :gross, :fee, :total, ':cur', 'reserved', :chain_tx, '', now(), NULL, NULL) RETURNING "marketplace_primaryorder"."id" AS order_id \gset
-- ledger_post: the entry, its postings and both balances in one statement (marketplace/ledger.py _POST_SQL)
WITH entry AS (INSERT INTO marketplace_journalentry (kind, memo, order_id, deposit_id, withdrawal_id, trade_order_id, trade_id, distribution_id, created_by_id, created_at) VALUES ('purchase_reserve', ':q × :unit', :order_id, NULL, NULL, NULL, NULL, NULL, :inv, now()) RETURNING id), postings AS (INSERT INTO marketplace_posting (entry_id, account_id, amount_minor) SELECT entry.id, leg.account, leg.amount FROM entry, unnest(ARRAY[:available, :held]::bigint[], ARRAY[-:total, :total]::bigint[]) AS leg(account, amount)), balances AS (UPDATE marketplace_ledgeraccount SET balance = marketplace_ledgeraccount.balance + moved.delta FROM unnest(ARRAY[:available, :held]::bigint[], ARRAY[-:total, :total]::bigint[]) AS moved(account, delta) WHERE marketplace_ledgeraccount.id = moved.account) SELECT id FROM entry;
UPDATE "marketplace_holding" SET "pending_quantity" = ("marketplace_holding"."pending_quantity" + :q), "updated_at" = now() WHERE "marketplace_holding"."id" = :h_id;
-- _offering_take (_OFFERING_TAKE_SQL): the offering's row lock, taken last and held only until
-- COMMIT, and the terms read above must still hold (NULL terms: the bench's offerings have no window)
UPDATE marketplace_offering SET fractions_sold = fractions_sold + :q, status = CASE WHEN fractions_for_sale = fractions_sold + :q AND status = 'open' THEN 'sold_out' ELSE status END, updated_at = now() WHERE id = :off AND fractions_sold <= fractions_for_sale - :q AND price_per_fraction_minor IS NOT DISTINCT FROM :price AND currency IS NOT DISTINCT FROM ':cur' AND fee_bps IS NOT DISTINCT FROM :fee_bps AND min_purchase IS NOT DISTINCT FROM :min_p AND max_purchase IS NOT DISTINCT FROM :max_p AND opens_at IS NOT DISTINCT FROM NULL AND closes_at IS NOT DISTINCT FROM NULL AND status IS NOT DISTINCT FROM ':ostatus';
COMMIT;
