"""Vector search: exact numpy and hnswlib agree."""

import numpy as np

from precache.semantic.vectors import VectorSearch


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_exact_and_hnswlib_search_agree():
    data, queries = _unit(600, 32, 1), _unit(25, 32, 2)
    exact, ann = VectorSearch(32, ann_min_size=10**9), VectorSearch(32, ann_min_size=100)
    for start in range(0, 600, 50):  # hnswlib takes over once the index grows past its minimum size
        exact.add(data[start:start + 50])
        ann.add(data[start:start + 50])
    assert ann.uses_ann and not exact.uses_ann
    for query in queries:
        (ep, es), (ap, as_) = exact.search(query, 5), ann.search(query, 5)
        assert list(ep) == list(ap)
        np.testing.assert_allclose(es, as_, atol=1e-5)
