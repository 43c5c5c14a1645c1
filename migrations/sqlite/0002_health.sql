-- Health probes, the load balancer's enable switch and automatic repairs (issue 4).
ALTER TABLE instances ADD COLUMN health_changed_at TEXT;
ALTER TABLE instances ADD COLUMN load_balancer_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE instances ADD COLUMN repair_attempts INTEGER NOT NULL DEFAULT 0;
-- The repair service's state of the set (RepairStatus as JSON).
ALTER TABLE scale_sets ADD COLUMN repairs TEXT NOT NULL DEFAULT '{}';
