-- The lease rows' change-feed stamp (PostgreSQL only; see the PostgreSQL migration of the same
-- name). The column exists so both backends have the same schema; nothing writes it here.
ALTER TABLE gateway_leases ADD COLUMN written_xid BIGINT NOT NULL DEFAULT 0;
