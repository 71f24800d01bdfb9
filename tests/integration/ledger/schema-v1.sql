-- The ledger's first schema (version 1), frozen as that version wrote it, with two deployments.
CREATE TABLE ledger_schema (
    version INTEGER PRIMARY KEY,
    applied_at_us BIGINT NOT NULL,
    description TEXT NOT NULL);
CREATE TABLE deployments (
    deployment_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'success', 'failed', 'rolled_back')),
    environment TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    commit_sha TEXT,
    branch TEXT,
    started_at_us BIGINT NOT NULL,
    finished_at_us BIGINT,
    services_count INTEGER,
    passed_checks INTEGER,
    failed_checks INTEGER,
    images TEXT,
    notes TEXT,
    updated_at_us BIGINT NOT NULL);
CREATE INDEX deployments_started ON deployments (started_at_us);
INSERT INTO ledger_schema (version, applied_at_us, description) VALUES (1, 1793000000000000, 'the first ledger layout');
INSERT INTO deployments (deployment_id, status, environment, project, host, commit_sha, branch, started_at_us,
    finished_at_us, services_count, passed_checks, failed_checks, images, notes, updated_at_us)
  VALUES ('deploy-20261001-120000', 'success', 'prod', 'homeiq', 'box1', 'a1b2c3d', 'main', 1790856000000000,
    1790856090000000, 5, 12, 0, '{"web":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}', NULL, 1790856090000000);
INSERT INTO deployments (deployment_id, status, environment, project, host, commit_sha, branch, started_at_us,
    finished_at_us, services_count, passed_checks, failed_checks, images, notes, updated_at_us)
  VALUES ('deploy-20261002-120000', 'failed', 'prod', 'homeiq', 'box1', 'b2c3d4e', 'main', 1790942400000000,
    1790942460000000, 5, 9, 3, NULL, 'health checks failed', 1790942460000000);
