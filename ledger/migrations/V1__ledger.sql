-- The ledger: every trade the gateway starts or learns of, its refunds, the Alipay notifications it
-- received, and the merchant-webhook outbox. Postgres is the truth; Redis holds only a
-- rebuildable index of `next_check_at`.
--
-- tenant_id names tenants.id (that row is never removed: a deleted tenant keeps it for history).

CREATE TABLE trades (
    tenant_id        uuid NOT NULL,
    out_trade_no     text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('barcode', 'qr', 'static_qr')),
    state            text NOT NULL CHECK (state IN ('PAYING', 'SUCCESS', 'FAILED', 'UNKNOWN', 'WAITING',
                                                    'CANCELLED', 'PARTIALLY_REFUNDED', 'REFUNDED')),
    -- Every transition is a compare-and-set on (state, version).
    version          integer NOT NULL DEFAULT 1,
    -- SHA-256 of the request that created it: the same key with another body is refused.
    fingerprint      bytea NOT NULL,
    currency         text NOT NULL,
    amount_minor     bigint NOT NULL CHECK (amount_minor > 0),
    refunded_minor   bigint NOT NULL DEFAULT 0,
    subject          text NOT NULL,
    store_id         text,
    terminal_id      text,
    operator_id      text,
    trade_no         text,
    buyer_user_id    text,
    qr_code          text,
    failure_code     text,
    failure_message  text,
    unknown_reason   text,
    cancel_action    text CHECK (cancel_action IN ('close', 'refund')),
    -- A cancel was asked for and is not yet confirmed: the reconciler retries it.
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    paid_at          timestamptz,
    -- UNKNOWN: when it must be cancelled; WAITING: when the order code expires.
    deadline         timestamptz,
    -- When the reconciler must look at it next; NULL once final.
    next_check_at    timestamptz,
    PRIMARY KEY (tenant_id, out_trade_no),
    CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor)
);
CREATE INDEX trades_due ON trades (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX trades_by_time ON trades (tenant_id, created_at);

-- A trade reaching a final state wakes whoever waits on it (`?wait=`).
CREATE FUNCTION trades_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trade_settled', NEW.tenant_id::text || ' ' || NEW.out_trade_no);
    RETURN NEW;
END
$$;
CREATE TRIGGER trades_settled AFTER UPDATE ON trades
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.state NOT IN ('PAYING', 'UNKNOWN', 'WAITING'))
    EXECUTE FUNCTION trades_settled();

CREATE TABLE refunds (
    tenant_id        uuid NOT NULL,
    out_trade_no     text NOT NULL,
    out_request_no   text NOT NULL,
    state            text NOT NULL CHECK (state IN ('PENDING', 'SUCCESS', 'FAILED', 'UNKNOWN')),
    version          integer NOT NULL DEFAULT 1,
    fingerprint      bytea NOT NULL,
    amount_minor     bigint NOT NULL CHECK (amount_minor > 0),
    reason           text,
    failure_code     text,
    failure_message  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    refunded_at      timestamptz,
    next_check_at    timestamptz,
    PRIMARY KEY (tenant_id, out_trade_no, out_request_no),
    FOREIGN KEY (tenant_id, out_trade_no) REFERENCES trades (tenant_id, out_trade_no)
);
CREATE INDEX refunds_due ON refunds (next_check_at) WHERE next_check_at IS NOT NULL;

-- Alipay's notifications, by notify_id (the same across Alipay's retries).
CREATE TABLE alipay_notifications (
    tenant_id      uuid NOT NULL,
    notify_id      text NOT NULL,
    out_trade_no   text NOT NULL,
    trade_status   text NOT NULL,
    times_received integer NOT NULL DEFAULT 1,
    first_at       timestamptz NOT NULL DEFAULT now(),
    last_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, notify_id)
);

-- Changes the merchant is told of by signed webhook (delivered by the reconciler).
CREATE TABLE webhook_outbox (
    id              bigserial PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    out_trade_no    text NOT NULL,
    event           text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    delivered_at    timestamptz,
    last_error      text
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;
