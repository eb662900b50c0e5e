-- Settlement matches a bill against the ledger in the reconciler's memory, a partition at a time
-- (reconciler/src/bills/matching.rs), instead of loading every row into `bill_rows` and joining
-- in SQL: Postgres's share of a million-row day falls from about 15 s of CPU to the reading of
-- the ledger's day. What a matched day keeps is its totals per tenant, store and currency (the
-- sales report's fees and net settled); the raw file stays kept with its SHA-256.

CREATE TABLE bill_totals (
    alipay_account text NOT NULL,
    day            date NOT NULL,
    -- The tenant whose trades the rows are (a row no trade holds, on an account with one
    -- tenant, is that tenant's).
    tenant_id      uuid NOT NULL,
    -- The trade's store; '' when it has none.
    store_id       text NOT NULL,
    currency       text NOT NULL,
    payments       bigint NOT NULL,
    refunds        bigint NOT NULL,
    -- Alipay's fees as the bill states them: negative when charged, positive when returned.
    fees_minor     bigint NOT NULL,
    -- Payments less refunds, plus the fees: what Alipay settles.
    net_minor      bigint NOT NULL,
    PRIMARY KEY (alipay_account, day, tenant_id, store_id, currency)
);
CREATE INDEX bill_totals_by_tenant ON bill_totals (tenant_id, day);

INSERT INTO bill_totals
SELECT b.alipay_account, b.day, t.tenant_id, coalesce(t.store_id, ''), b.currency,
       count(*) FILTER (WHERE b.kind = 'payment'), count(*) FILTER (WHERE b.kind = 'refund'),
       sum(b.fee_minor)::bigint,
       sum(CASE WHEN b.kind = 'payment' THEN b.amount_minor ELSE -b.amount_minor END + b.fee_minor)::bigint
FROM bill_rows b JOIN trades t ON t.alipay_account = b.alipay_account AND t.out_trade_no = b.out_trade_no
GROUP BY 1, 2, 3, 4, 5;

DROP TABLE bill_rows;
