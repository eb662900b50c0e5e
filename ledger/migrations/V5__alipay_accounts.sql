-- Alipay knows a trade by (app or partner, out_trade_no); the ledger by (tenant, out_trade_no).
-- Several tenants may share one Alipay account (brands of one merchant, secondary merchants), so
-- a trade number must be unique per Alipay account too, or one tenant's pay, cancel or
-- notification could reach another's trade. Each trade carries the account it was made in
-- (`openapi:<app_id>`, `mapi:<partner>`, as tenants::registry::alipay_account writes it).
ALTER TABLE trades ADD COLUMN alipay_account text;
DO $$
BEGIN
    IF to_regclass('tenants') IS NOT NULL THEN
        UPDATE trades t SET alipay_account = n.dialect || ':' || n.alipay_id FROM tenants n WHERE n.id = t.tenant_id;
    END IF;
END
$$;
-- A trade of no tenant known here keeps a space of its own.
UPDATE trades SET alipay_account = 'tenant:' || tenant_id WHERE alipay_account IS NULL;
ALTER TABLE trades ALTER COLUMN alipay_account SET NOT NULL;
DO $$
DECLARE
    clashes bigint;
BEGIN
    SELECT count(*) INTO clashes FROM (SELECT 1 FROM trades GROUP BY alipay_account, out_trade_no HAVING count(*) > 1) c;
    IF clashes > 0 THEN
        RAISE EXCEPTION '% trade numbers are held by more than one tenant of one Alipay account; each names one trade at Alipay. Resolve them first (docs/runbook.md, "Tenants sharing an Alipay account")', clashes;
    END IF;
END
$$;
CREATE UNIQUE INDEX trades_by_alipay_account ON trades (alipay_account, out_trade_no);

-- The refund number sent to Alipay. OpenAPI scopes out_request_no to its trade, so it is sent as
-- the POS gave it; MAPI names a refund by partner + partner_refund_id alone, so the gateway sends a
-- number made from the trade's and the refund's (unique per partner). Refunds made before keep the
-- number they were sent with.
ALTER TABLE refunds ADD COLUMN wire_request_no text;
UPDATE refunds SET wire_request_no = out_request_no;
ALTER TABLE refunds ALTER COLUMN wire_request_no SET NOT NULL;
