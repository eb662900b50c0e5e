-- Settlements are announced by their writers, batched (ledger::announce): a NOTIFY per row
-- serialized every settling commit behind a global lock.
DROP TRIGGER trades_settled ON trades;
DROP FUNCTION trades_settled();

-- Room in every page for the next version of its rows: most trade updates (the cancel mark, a
-- version bump) change no indexed column and can then stay on the page (HOT), touching no index.
ALTER TABLE trades SET (fillfactor = 80);
