-- A POS may cancel a paid trade (a reversal). Until Alipay confirms it, the trade keeps
-- cancel_requested and a next_check_at, so the reconciler carries the reversal to its end; its
-- retries back off from when the cancel was asked for.
ALTER TABLE trades ADD COLUMN cancel_requested_at timestamptz;
UPDATE trades SET cancel_requested_at = updated_at WHERE cancel_requested;
