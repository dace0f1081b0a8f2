/* store_schema — see store_schema.h. Times are Unix milliseconds. */
#include "store/store_schema.h"

static const struct store_migration migrations[] = {
    {1, "CREATE TABLE workflows ("
        "  id TEXT NOT NULL, version INTEGER NOT NULL, hash TEXT NOT NULL,"
        "  name TEXT, description TEXT, template TEXT NOT NULL, schema TEXT NOT NULL,"
        "  created_by TEXT, created_at INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
        "  bundled INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (id, version));"
        "CREATE TABLE jobs ("
        "  id TEXT PRIMARY KEY, owner TEXT NOT NULL,"
        "  workflow_id TEXT, workflow_version INTEGER, workflow_hash TEXT,"
        "  inputs TEXT, params TEXT, metadata TEXT, graph TEXT,"
        "  priority INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL,"
        "  status TEXT NOT NULL, cache_hit INTEGER NOT NULL DEFAULT 0,"
        "  cache_of TEXT, cache_key TEXT,"
        "  attempts INTEGER NOT NULL DEFAULT 0, backend TEXT, prompt_id TEXT, progress TEXT,"
        "  error_code TEXT, error_message TEXT, error_node TEXT, error_class TEXT,"
        "  node_errors TEXT, callback_url TEXT,"
        "  created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,"
        "  updated_at INTEGER NOT NULL);"
        "CREATE INDEX jobs_queue ON jobs(status, priority DESC, seq);"
        "CREATE INDEX jobs_owner ON jobs(owner, created_at);"
        "CREATE INDEX jobs_created ON jobs(created_at, id);"
        "CREATE TABLE job_attempts ("
        "  job_id TEXT NOT NULL, n INTEGER NOT NULL, backend TEXT, prompt_id TEXT,"
        "  error_code TEXT, message TEXT, started_at INTEGER, ended_at INTEGER,"
        "  PRIMARY KEY (job_id, n));"
        "CREATE TABLE job_events ("
        "  job_id TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,"
        "  kind TEXT NOT NULL, data TEXT, PRIMARY KEY (job_id, seq));"
        "CREATE TABLE outputs ("
        "  job_id TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, mime TEXT,"
        "  sha256 TEXT, storage_key TEXT NOT NULL, node TEXT, kind TEXT,"
        "  created_at INTEGER NOT NULL, PRIMARY KEY (job_id, name));"
        "CREATE TABLE cache_entries ("
        "  key TEXT PRIMARY KEY, job_id TEXT NOT NULL, owner TEXT,"
        "  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
        "CREATE TABLE idempotency_keys ("
        "  owner TEXT NOT NULL, key TEXT NOT NULL, body_hash TEXT NOT NULL, job_id TEXT,"
        "  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
        "  PRIMARY KEY (owner, key));"
        "CREATE TABLE audit_log ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, actor TEXT,"
        "  action TEXT NOT NULL, target TEXT, peer TEXT, detail TEXT);"},
    /* a workflow version's overlays (JSON array), part of its content hash */
    {2, "ALTER TABLE workflows ADD COLUMN overlays TEXT;"},
    /* the webhook outbox (src/webhook): one row per event, payload = the exact body bytes sent
     * on every attempt under the same msg_id; status pending|delivered|failed */
    {3, "CREATE TABLE webhook_deliveries ("
        "  msg_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, url TEXT NOT NULL,"
        "  event TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,"
        "  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER, last_status INTEGER,"
        "  last_error TEXT, delivered_at INTEGER,"
        "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);"
        "CREATE INDEX webhook_deliveries_job ON webhook_deliveries(job_id);"
        "CREATE INDEX webhook_deliveries_updated ON webhook_deliveries(updated_at);"
        "CREATE TABLE webhook_attempts ("
        "  msg_id TEXT NOT NULL, n INTEGER NOT NULL, ts INTEGER NOT NULL, http_status INTEGER,"
        "  error TEXT, duration_ms INTEGER, PRIMARY KEY (msg_id, n));"},
    /* raw ComfyUI graphs (POST /prompt): the job's kind, its request options, and input images
     * that came inline (kept until the job finishes); which webhook events a job wants */
    {4, "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'workflow';"
        "ALTER TABLE jobs ADD COLUMN request TEXT;"
        "ALTER TABLE jobs ADD COLUMN webhook_events INTEGER NOT NULL DEFAULT 0;"
        "CREATE TABLE job_inputs ("
        "  job_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,"
        "  PRIMARY KEY (job_id, name));"},
    /* several gateways on one store (SHARED_STORE): which instance runs a job, until when its
     * lease holds, a cancel asked elsewhere, and the job's log for readers elsewhere */
    {5, "ALTER TABLE jobs ADD COLUMN instance TEXT;"
        "ALTER TABLE jobs ADD COLUMN lease_until INTEGER;"
        "ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE jobs ADD COLUMN log TEXT;"
        "ALTER TABLE webhook_deliveries ADD COLUMN instance TEXT;"
        "CREATE INDEX jobs_claim ON jobs(status, priority DESC, created_at);"},
    /* SHARED_STORE: when each instance was last seen alive, so that another can take over the
     * pending webhook deliveries of one that is gone for good */
    {6, "CREATE TABLE instances (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL);"
        /* instances that wrote deliveries before: seen now, so dead three leases from now
         * unless they come back (an upgraded live one writes its own heartbeat) */
        "INSERT OR IGNORE INTO instances (id, seen_at) SELECT DISTINCT instance,"
        " CAST(strftime('%s', 'now') AS INTEGER) * 1000 FROM webhook_deliveries"
        " WHERE instance IS NOT NULL;"
        "CREATE INDEX webhook_pending_instance ON webhook_deliveries(status, instance);"},
};

size_t store_migration_count(void)
{
    return sizeof(migrations) / sizeof(migrations[0]);
}

const struct store_migration *store_migration(size_t i)
{
    return &migrations[i];
}
