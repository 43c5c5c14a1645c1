-- Health probes, the load balancer's enable switch and automatic repairs (issue 4).
ALTER TABLE instances ADD COLUMN health_changed_at TIMESTAMPTZ;
ALTER TABLE instances ADD COLUMN load_balancer_enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE instances ADD COLUMN repair_attempts BIGINT NOT NULL DEFAULT 0;
-- The repair service's state of the set (RepairStatus as JSON).
ALTER TABLE scale_sets ADD COLUMN repairs TEXT NOT NULL DEFAULT '{}';
