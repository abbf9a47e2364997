//! The change feed as the service offers it: pages in commit order, waiting for news (long
//! polls and streams), and the tag that ties cursors to this database.
//!
//! Waiters are woken by the indexer's progress: it follows the change log (on PostgreSQL also
//! what other replicas commit), so a write anywhere wakes every waiter here once this replica
//! has seen it. A slow poll of the log backs that up.

use super::{Result, Service};
use crate::domain::changes::{Cursor, CursorError, EventType};
use crate::store::Feed;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a waiter looks at the log when the indexer has said nothing (it is rebuilding, or
/// its notification was lost).
const RECHECK: Duration = Duration::from_secs(5);

/// What a client asks of the feed.
#[derive(Debug, Clone, Default)]
pub struct FeedRequest {
    /// Where to continue; `None`: from the oldest retained event.
    pub after: Option<i64>,
    pub limit: i64,
    /// `None`: every type.
    pub types: Option<Vec<EventType>>,
    pub category: Option<String>,
}

/// Why a wait for news ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveNews {
    /// The log may hold something newer: read again.
    Maybe,
    /// The deadline passed with nothing new.
    Deadline,
    /// The server is shutting down.
    Closing,
}

impl Service {
    /// The tag every cursor of this database carries (the same on every replica).
    pub async fn cursor_tag(&self) -> Result<[u8; 4]> {
        let tag = self
            .cursor_tag
            .get_or_try_init(|| async {
                let id = self.store.database_id().await?;
                Ok::<_, crate::store::StoreError>(Cursor::database_tag(&id))
            })
            .await?;
        Ok(*tag)
    }

    /// Reads a cursor a client sent back.
    pub async fn parse_cursor(&self, text: &str) -> Result<std::result::Result<i64, CursorError>> {
        let tag = self.cursor_tag().await?;
        Ok(Cursor::decode(text, tag).map(|c| c.seq))
    }

    /// The wire form of position `seq`.
    pub async fn cursor(&self, seq: i64) -> Result<String> {
        Ok(Cursor { seq }.encode(self.cursor_tag().await?))
    }

    /// One page of the feed.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn changes(&self, req: &FeedRequest) -> Result<Feed> {
        Ok(self
            .store
            .feed(
                req.after,
                req.limit,
                req.types.as_deref(),
                req.category.as_deref(),
            )
            .await?)
    }

    /// Waits until the log may hold something after `seq`, `deadline` passes, or `closing`
    /// turns true.
    pub async fn wait_for_news(
        &self,
        seq: i64,
        deadline: Instant,
        closing: &mut watch::Receiver<bool>,
    ) -> LiveNews {
        if *closing.borrow() {
            return LiveNews::Closing;
        }
        let mut applied = self.indexing.subscribe();
        let recheck = Instant::now() + RECHECK;
        tokio::select! {
            biased;
            _ = closing.wait_for(|c| *c) => LiveNews::Closing,
            _ = applied.wait_for(|a| *a > seq) => LiveNews::Maybe,
            () = tokio::time::sleep_until(deadline.min(recheck)) => {
                if Instant::now() >= deadline { LiveNews::Deadline } else { LiveNews::Maybe }
            }
        }
    }
}
