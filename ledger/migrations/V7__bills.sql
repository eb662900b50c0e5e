-- Settlement: Alipay's daily bill of each Alipay account (an OpenAPI app or a Global partner),
-- kept as downloaded, read into `bill_rows`, matched against the ledger, and every disagreement
-- stored in `bill_discrepancies` until an ops action resolves it (docs/runbook.md, "The daily
-- close"). A bill belongs to an Alipay account, not a tenant: tenants sharing an account share
-- its bill, and each row is the tenant's whose trade it names.

CREATE TABLE bill_days (
    alipay_account text NOT NULL,
    -- The Beijing (UTC+8) calendar day the bill covers.
    day            date NOT NULL,
    -- pending: not reconciled yet (the bill not out, or a try failed); empty: Alipay has no bill
    -- and the ledger nothing for the day; matched: read and matched (discrepancies or not).
    state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'empty', 'matched')),
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text,
    next_try_at    timestamptz NOT NULL DEFAULT now(),
    -- One reconciler at a time works on a day.
    leased_until   timestamptz,
    -- The raw file as downloaded, where it is kept and its SHA-256.
    file_path      text,
    file_sha256    bytea,
    file_bytes     bigint,
    payments       bigint,
    refunds        bigint,
    discrepancies  bigint,
    fetched_at     timestamptz,
    matched_at     timestamptz,
    PRIMARY KEY (alipay_account, day)
);

-- Every row of every matched bill. Payments carry out_request_no ''. A payment or a refund is in
-- one day's bill only; a second day's row naming it again is refused with that day.
CREATE TABLE bill_rows (
    alipay_account text NOT NULL,
    day            date NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('payment', 'refund')),
    out_trade_no   text NOT NULL,
    out_request_no text NOT NULL,
    trade_no       text NOT NULL,
    currency       text NOT NULL,
    amount_minor   bigint NOT NULL CHECK (amount_minor >= 0),
    -- Alipay's fee as the bill states it: negative when charged, positive when returned.
    fee_minor      bigint NOT NULL,
    store_id       text,
    finished_at    timestamptz NOT NULL,
    PRIMARY KEY (alipay_account, kind, out_trade_no, out_request_no)
);
CREATE INDEX bill_rows_by_day ON bill_rows (alipay_account, day);

CREATE TABLE bill_discrepancies (
    id             bigserial PRIMARY KEY,
    alipay_account text NOT NULL,
    day            date NOT NULL,
    -- The tenant whose trade it is; NULL when no tenant can be told (a payment only Alipay knows
    -- on an account several tenants share).
    tenant_id      uuid,
    class          text NOT NULL CHECK (class IN ('missing_from_ledger', 'missing_from_bill', 'amount_mismatch',
                                                  'status_mismatch', 'refund_mismatch')),
    kind           text NOT NULL CHECK (kind IN ('payment', 'refund')),
    out_trade_no   text NOT NULL,
    out_request_no text NOT NULL,
    trade_no       text,
    currency       text,
    ledger_minor   bigint,
    bill_minor     bigint,
    alipay_minor   bigint,
    -- What Alipay answered when asked, and what was done (for example the trade recorded).
    detail         text NOT NULL,
    found_at       timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    resolved_by    text,
    resolution     text,
    UNIQUE (alipay_account, day, kind, out_trade_no, out_request_no, class),
    CHECK ((resolved_at IS NULL) = (resolution IS NULL) AND (resolved_at IS NULL) = (resolved_by IS NULL))
);
CREATE INDEX bill_discrepancies_open ON bill_discrepancies (day) WHERE resolved_at IS NULL;
CREATE INDEX bill_discrepancies_by_tenant ON bill_discrepancies (tenant_id, day);

-- Refunds are found by the number Alipay knows them by.
CREATE INDEX refunds_by_time ON refunds (tenant_id, refunded_at) WHERE refunded_at IS NOT NULL;
