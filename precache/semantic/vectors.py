"""Nearest-neighbour search over normalised vectors: exact below a size, hnswlib from it on."""

import threading

import numpy as np


class VectorSearch:
    """Append-only inner-product search; readers never see a half-written row."""

    def __init__(self, dim: int, ann_min_size: int = 20000):
        self.dim = dim
        self.ann_min_size = ann_min_size
        self._buf = np.zeros((0, dim), dtype=np.float32)
        self._size = 0
        self._ann = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    @property
    def uses_ann(self) -> bool:
        return self._ann is not None

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (their positions continue from the current size)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            start, end = self._size, self._size + len(vectors)
            self._fit(end)
            self._buf[start:end] = vectors
            if self._ann is not None:
                self._ann_add(vectors, start)
            elif end >= self.ann_min_size:
                self._ann = self._new_ann(end)
                self._ann_add(self._buf[:end], 0)
            self._size = end

    def _fit(self, end: int) -> None:
        """Grow the buffer to hold `end` rows, by doubling, so appends cost O(1) amortised."""
        if end > len(self._buf):
            grown = np.zeros((max(end, 2 * len(self._buf), 64), self.dim), dtype=np.float32)
            grown[:self._size] = self._buf[:self._size]
            self._buf = grown

    def _new_ann(self, capacity: int):
        import hnswlib

        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(max_elements=2 * capacity, ef_construction=200, M=32)
        index.set_ef(128)
        return index

    def _ann_add(self, vectors: np.ndarray, start: int) -> None:
        needed = start + len(vectors)
        if needed > self._ann.get_max_elements():
            self._ann.resize_index(2 * needed)
        self._ann.add_items(vectors, np.arange(start, needed))

    def rows(self, size: int) -> np.ndarray:
        """Return the first `size` stored vectors (a view: do not write to it)."""
        return self._buf[:size]

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (positions, cosine similarities) of the k nearest rows, best first."""
        size = self._size
        k = min(k, size)
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        vector = np.asarray(vector, dtype=np.float32).reshape(self.dim)
        if self._ann is not None:
            with self._lock:
                labels, distances = self._ann.knn_query(vector, k=k)
            return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)
        return self.exact(vector, k, size)

    def exact(self, vector: np.ndarray, k: int, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return the k nearest rows by a full scan.

        Only the columns where the query is not zero are read: a question vector fills its language's block
        and leaves the others zero (precache/semantic/embedders.py), so half the matrix adds nothing.
        """
        rows = self._buf[: self._size if size is None else size]
        filled = np.flatnonzero(vector)
        if len(filled) and (filled[0] > 0 or filled[-1] < self.dim - 1):
            span = slice(int(filled[0]), int(filled[-1]) + 1)
            sims = rows[:, span] @ vector[span]
        else:
            sims = rows @ vector
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return top.astype(np.int64), sims[top]
