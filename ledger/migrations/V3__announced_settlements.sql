-- Settlements are announced by their writers, batched (ledger::announce): a NOTIFY per row
-- serialized every settling commit behind a global lock.
DROP TRIGGER trades_settled ON trades;
DROP FUNCTION trades_settled();
