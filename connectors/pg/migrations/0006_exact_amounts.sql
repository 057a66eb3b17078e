-- Amounts in the ledger exactly as published, in the currency's minor units (issue 10.7).
-- numeric(20, 2) rounded a KWD amount (3 decimal places) and gave a JPY one (none) two
-- decimals. numeric without a scale keeps the scale it is given, and the ledger writes
-- every amount quantized to its currency's minor unit (connectors/ledger/batch.py).

ALTER TABLE decision_log
    ALTER COLUMN limit_amount TYPE numeric,
    ALTER COLUMN available TYPE numeric;
ALTER TABLE current_limits
    ALTER COLUMN limit_amount TYPE numeric,
    ALTER COLUMN available TYPE numeric;

-- Rows written before: the published envelope (payload) holds the exact amounts.
UPDATE decision_log SET
    limit_amount = (payload -> 'payload' -> 'limit' ->> 'amount')::numeric,
    available = (payload -> 'payload' -> 'available' ->> 'amount')::numeric
WHERE limit_amount::text <> payload -> 'payload' -> 'limit' ->> 'amount'
   OR available::text <> payload -> 'payload' -> 'available' ->> 'amount';
UPDATE current_limits SET
    limit_amount = (payload -> 'payload' -> 'limit' ->> 'amount')::numeric,
    available = (payload -> 'payload' -> 'available' ->> 'amount')::numeric
WHERE limit_amount::text <> payload -> 'payload' -> 'limit' ->> 'amount'
   OR available::text <> payload -> 'payload' -> 'available' ->> 'amount';
