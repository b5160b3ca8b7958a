-- Wake-ups (docs/design.md, *Cluster*): instances LISTEN on these channels and read the change
-- feed or the events table at once instead of at their next poll. The tables stay the source of
-- truth (a notification can be lost: a listener reconnecting misses what was sent meanwhile),
-- and the polls stay as the fallback. PostgreSQL delivers one notification per channel and
-- payload per transaction, so a batch of writes is one wake-up.

-- NOTIFY on the channel named by the trigger's argument.
CREATE FUNCTION gs_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER gateways_notify_added_or_deleted AFTER INSERT OR DELETE ON gateways
    FOR EACH STATEMENT EXECUTE FUNCTION gs_notify('gs_gateways');

-- Every change but the owner's periodic last-seen refresh (a fact a decision needs — status,
-- counts — or an operator's edit): at 10,000 gateways the refreshes alone are ~170 rows a
-- second, which the fallback poll picks up.
CREATE TRIGGER gateways_notify_changed AFTER UPDATE ON gateways
    FOR EACH ROW WHEN (
        OLD.last_seen IS NOT DISTINCT FROM NEW.last_seen
        OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.sessions_count IS DISTINCT FROM NEW.sessions_count
        OR OLD.agents_count IS DISTINCT FROM NEW.agents_count
    )
    EXECUTE FUNCTION gs_notify('gs_gateways');

CREATE TRIGGER cluster_events_notify AFTER INSERT ON cluster_events
    FOR EACH STATEMENT EXECUTE FUNCTION gs_notify('gs_events');
