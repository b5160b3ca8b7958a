-- One gateway per address is checked inside the write that takes it (src/db/gateways/address.rs):
-- this index makes that check one lookup. Not unique: a database where a race already gave two
-- gateways one address would refuse the migration, and the daemon would not start.
CREATE INDEX gateways_address ON gateways (lower(host), port);
