-- What the reconciler needs: every open trade carries the time it must be looked at (a PAYING
-- intent too: if its gateway dies mid-call, the reconciler finds it then), and every webhook
-- delivery attempt is kept so it can be listed. A delivery is claimed by moving next_attempt_at
-- past the attempt's deadline (a lease), so several reconcilers share the outbox.

-- An open trade always has next_check_at (the gateway now writes it into the intent), so
-- trades_due (next_check_at IS NOT NULL) is the sweeper's index of every open trade.

ALTER TABLE webhook_outbox ADD COLUMN abandoned_at timestamptz;
DROP INDEX webhook_outbox_due;
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL AND abandoned_at IS NULL;
CREATE INDEX webhook_outbox_by_tenant ON webhook_outbox (tenant_id, id);

CREATE TABLE webhook_attempts (
    outbox_id   bigint NOT NULL REFERENCES webhook_outbox (id),
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL,
    took_ms     integer NOT NULL,
    -- The merchant's HTTP status, when it answered.
    http_status integer,
    -- Why the attempt failed (connection, timeout, status), when it did.
    error       text,
    PRIMARY KEY (outbox_id, attempt)
);
