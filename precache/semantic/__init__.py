"""The semantic wing: match an asked question to a cached one by meaning.

- store.py: question embeddings in SQL, written once per question and model (worker, `faq import`).
- index.py: the cached questions' vectors in memory, refreshed from SQL, searched (vectors.py: exact
  or hnswlib search).
- decision.py: one answer's score, its margin over rivals and the threshold it must clear; the one
  scorer, used by the ladder and by the in-flight join alike.
- curated.py: how confident a wrong match can look in the FAQ, measured against itself.
- guards.py: negation, numbers and named entities that differ veto a near miss.
- embedders.py, onnx.py: questions into vectors (sentence-transformers, or ONNX Runtime).
- tier.py: one index and one embedder per web process, used by the ladder.
"""
