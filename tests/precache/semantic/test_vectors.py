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


def test_a_query_in_one_block_reads_only_that_block_and_finds_the_same():
    rng = np.random.default_rng(1)
    rows = np.zeros((50, 8), dtype=np.float32)
    rows[:25, :4] = rng.normal(size=(25, 4))  # one language's block
    rows[25:, 4:] = rng.normal(size=(25, 4))  # the other's
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    search = VectorSearch(8)
    search.add(rows)
    query = rows[3] + 0.01 * np.concatenate([rng.normal(size=4), np.zeros(4)]).astype(np.float32)
    positions, sims = search.search(query, 5)
    full = rows @ query
    assert positions[0] == 3 and set(positions) <= set(range(25))
    np.testing.assert_allclose(sims, np.sort(full)[::-1][:5], rtol=1e-6)
