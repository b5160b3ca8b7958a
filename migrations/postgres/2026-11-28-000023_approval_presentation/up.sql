-- What the gateway offered for an approval and whether the inbox kept all it presented: an
-- operator is never shown less than what they approve (docs/design.md, *Approvals*). `offered`
-- is the gateway's `allowedDecisions`, comma-separated (NULL: it did not say, so all three);
-- `whole` is false where the command or warning was cut, and such an approval can only be
-- denied. Rows kept before this cut at 4 KiB and said so with a marker: they are not whole.
ALTER TABLE approvals ADD COLUMN offered TEXT;
ALTER TABLE approvals ADD COLUMN whole BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE approvals SET whole = FALSE
    WHERE command LIKE '%…[+% bytes]' OR warning LIKE '%…[+% bytes]';
