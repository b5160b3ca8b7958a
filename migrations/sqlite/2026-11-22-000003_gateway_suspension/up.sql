-- The suspension this daemon made on the gateway (gateway.suspend.prepare's id): set while the
-- gateway is suspended through the supervisor, so a restart of the daemon can still resume it.
ALTER TABLE gateways ADD COLUMN suspension_id TEXT;
