-- A cordoned gateway keeps its work and takes nothing new: no spawn is routed to it and it does
-- not act as primary until it is uncordoned (docs/design.md, *Election and routing*).
ALTER TABLE gateways ADD COLUMN cordoned BOOLEAN NOT NULL DEFAULT FALSE;
