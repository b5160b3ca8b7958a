DROP TRIGGER cluster_events_notify ON cluster_events;
DROP TRIGGER gateways_notify_changed ON gateways;
DROP TRIGGER gateways_notify_added_or_deleted ON gateways;
DROP FUNCTION gs_notify();
