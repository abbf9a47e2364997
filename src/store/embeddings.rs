//! Question embeddings (search by meaning): which questions still need a vector for a model,
//! the vectors themselves, and the lease that lets one replica at a time do the embedding.
//! Every statement here is one both databases accept.

use super::sql::Arg;
use super::{Store, StoreResult, now_micros};

/// A question whose vector for a model is missing or was computed for an older version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingCandidate {
    pub question_id: i64,
    pub version: i64,
    /// The hash of the text the stored (older) vector was computed from, if there is one.
    pub content_hash: Option<String>,
}

/// A vector to store for a question version.
#[derive(Debug, Clone)]
pub struct NewEmbedding {
    pub question_id: i64,
    pub version: i64,
    pub content_hash: String,
    pub vector: Vec<f32>,
}

/// A stored vector, as replicas follow them.
#[derive(Debug, Clone)]
pub struct StoredEmbedding {
    pub seq: i64,
    pub question_id: i64,
    pub vector: Vec<f32>,
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Store {
    /// Up to `limit` questions with ids above `after` (in id order) whose vector for `model`
    /// is missing or older than the question.
    pub async fn embedding_candidates(
        &self,
        model: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<EmbeddingCandidate>> {
        self.reading(async |c| {
            let rows: Vec<(i64, i64, Option<String>)> = c
                .fetch_all(
                    "SELECT q.id, q.version, e.content_hash FROM questions q
                     LEFT JOIN embeddings e ON e.question_id = q.id AND e.model = $1
                     WHERE q.id > $2 AND (e.question_id IS NULL OR e.version <> q.version)
                     ORDER BY q.id LIMIT $3",
                    &[model.into(), after.into(), limit.into()],
                )
                .await?;
            Ok(rows
                .into_iter()
                .map(|(question_id, version, content_hash)| EmbeddingCandidate {
                    question_id,
                    version,
                    content_hash,
                })
                .collect())
        })
        .await
    }

    /// Stores vectors for `model`, each replacing the question's previous one (with a new
    /// `seq`, so replicas pick it up); a question deleted meanwhile is skipped. Returns how
    /// many were stored.
    pub async fn save_embeddings(&self, model: &str, rows: &[NewEmbedding]) -> StoreResult<u64> {
        let now = now_micros();
        self.write_unflushed(async |c| {
            let mut stored = 0;
            for r in rows {
                let bytes = to_bytes(&r.vector);
                c.execute(
                    "DELETE FROM embeddings WHERE question_id = $1 AND model = $2",
                    &[r.question_id.into(), model.into()],
                )
                .await?;
                stored += c
                    .execute(
                        "INSERT INTO embeddings
                             (question_id, model, version, content_hash, dim, vector, embedded_at)
                         SELECT $1, $2, $3, $4, $5, $6, $7
                         WHERE EXISTS (SELECT 1 FROM questions WHERE id = $1)",
                        &[
                            r.question_id.into(),
                            model.into(),
                            r.version.into(),
                            r.content_hash.as_str().into(),
                            (r.vector.len() as i64).into(),
                            Arg::Bytes(&bytes),
                            now.into(),
                        ],
                    )
                    .await?;
            }
            Ok(stored)
        })
        .await
    }

    /// Notes that the stored vector of `question_id` also stands for `version` (its embedded
    /// text did not change).
    pub async fn touch_embedding(
        &self,
        model: &str,
        question_id: i64,
        version: i64,
    ) -> StoreResult<()> {
        self.write_unflushed(async |c| {
            c.execute(
                "UPDATE embeddings SET version = $3 WHERE question_id = $1 AND model = $2",
                &[question_id.into(), model.into(), version.into()],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Up to `limit` vectors of `model` stored after `seq`, oldest first.
    pub async fn embeddings_after(
        &self,
        model: &str,
        seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEmbedding>> {
        self.reading(async |c| {
            let rows: Vec<(i64, i64, Vec<u8>)> = c
                .fetch_all(
                    "SELECT seq, question_id, vector FROM embeddings
                     WHERE model = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[model.into(), seq.into(), limit.into()],
                )
                .await?;
            Ok(rows
                .into_iter()
                .map(|(seq, question_id, v)| StoredEmbedding {
                    seq,
                    question_id,
                    vector: from_bytes(&v),
                })
                .collect())
        })
        .await
    }

    /// How many vectors each model has.
    pub async fn embedding_counts(&self) -> StoreResult<Vec<(String, i64)>> {
        self.reading(async |c| {
            Ok(c.fetch_all(
                "SELECT model, COUNT(*) FROM embeddings GROUP BY model ORDER BY model",
                &[],
            )
            .await?)
        })
        .await
    }

    /// Drops every vector of a model other than `model` (once `model` has replaced them).
    pub async fn drop_other_embeddings(&self, model: &str) -> StoreResult<u64> {
        self.write_unflushed(async |c| {
            Ok(
                c.execute("DELETE FROM embeddings WHERE model <> $1", &[model.into()])
                    .await?,
            )
        })
        .await
    }

    /// Takes or renews the embedding lease for `holder` until `until_micros`; false while
    /// another holder's lease lasts.
    pub async fn claim_embedder_lease(&self, holder: &str, until_micros: i64) -> StoreResult<bool> {
        let now = now_micros();
        self.write_unflushed(async |c| {
            let n = c
                .execute(
                    "UPDATE embedder_lease SET holder = $1, expires_at = $2
                     WHERE id = 1 AND (holder = $1 OR expires_at < $3)",
                    &[holder.into(), until_micros.into(), now.into()],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }
}
