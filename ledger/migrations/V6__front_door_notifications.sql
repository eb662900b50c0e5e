-- Trades made through the front door (POS software on Alipay's SDKs calling our gateway.do) may
-- carry the POS's notify_url. When such a trade is paid, by whichever writer (the gateway's own
-- answer, the reconciler's query, Alipay's notification), the POS is owed Alipay's asynchronous
-- notification: an `alipay.notify` event in the outbox, in the same transaction as the payment,
-- delivered (signed with the tenant's front-door key) by the reconciler like a webhook.
ALTER TABLE trades ADD COLUMN notify_url text;

CREATE FUNCTION trades_paid_notify_pos() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_outbox (tenant_id, out_trade_no, event, payload)
    VALUES (NEW.tenant_id, NEW.out_trade_no, 'alipay.notify', jsonb_build_object(
        'notify_url', NEW.notify_url,
        'trade_status', 'TRADE_SUCCESS',
        'trade_no', NEW.trade_no,
        'out_trade_no', NEW.out_trade_no,
        'buyer_user_id', NEW.buyer_user_id,
        'currency', NEW.currency,
        'amount_minor', NEW.amount_minor,
        'subject', NEW.subject,
        'created_at', NEW.created_at,
        'paid_at', NEW.paid_at));
    RETURN NEW;
END
$$;
CREATE TRIGGER trades_paid_notify_pos AFTER UPDATE OF state ON trades
    FOR EACH ROW WHEN (NEW.notify_url IS NOT NULL AND NEW.state = 'SUCCESS' AND OLD.state <> 'SUCCESS')
    EXECUTE FUNCTION trades_paid_notify_pos();
