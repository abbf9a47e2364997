-- Keys may expire (`expires_at`; NULL: never), and say when they were last used
-- (`last_used_at`, to the minute: kb writes it at most once a minute per key, so a key in use
-- does not cost a write per request). Both in microseconds since the epoch, as every time here.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
