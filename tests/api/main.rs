//! The one integration-test binary: every test runs the real router against its own data
//! directory in a temporary directory, with its own SQLite file, or its own PostgreSQL
//! database when `KB_TEST_DATABASE_URL` names a server.

mod helpers;
mod hygiene;
mod limits;
mod meaning;

mod answers;
mod auth;
mod bulk;
mod caching;
mod categories;
mod changes;
mod concurrency;
mod docs;
mod errors;
mod golden;
mod idempotency;
mod keys;
mod learner_data;
mod mcp;
mod openapi;
mod process;
mod questions;
mod quiz;
mod relevance;
mod replicas;
mod reviews;
mod search;
mod seed;
mod semantic;
mod sync_docs;
mod upgrade;
mod webhooks;
