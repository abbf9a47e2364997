-- Webhooks (docs/webhooks.md): endpoints that are told about the change feed's events.
-- `enqueued_upto` is how far down the change log this endpoint's queue has been filled; the
-- replica holding the endpoint's lease (`lease_owner` until `lease_until`, microseconds) is the
-- only one filling or sending its queue, so each endpoint gets its events once and in order.
-- `secret` signs every delivery; `old_secret` signs too until `old_secret_until` (a rotation).
CREATE TABLE webhooks (
    id               BIGSERIAL PRIMARY KEY,
    url              TEXT NOT NULL,
    -- JSON array of event types; NULL: every type, including types added later.
    events           TEXT,
    category         TEXT,
    description      TEXT NOT NULL,
    enabled          BOOLEAN NOT NULL,
    disabled_reason  TEXT,
    secret           TEXT NOT NULL,
    old_secret       TEXT,
    old_secret_until BIGINT,
    enqueued_upto    BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- One event for one endpoint: its body as sent, and the outcome of its latest attempt. The
-- queue of an endpoint is its `pending` deliveries in id order (the feed's order); a ping has
-- no `seq` and is never queued.
CREATE TABLE webhook_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    webhook_id       BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    seq              BIGINT,
    event_id         TEXT NOT NULL,
    type             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    first_attempt_at BIGINT,
    last_attempt_at  BIGINT,
    next_attempt_at  BIGINT,
    response_status  BIGINT,
    latency_ms       BIGINT,
    error            TEXT,
    response_excerpt TEXT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (webhook_id, status, id);
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (created_at);
