"""The team's documents: read, cut into passages, stored, retrieved, and the answers grounded in them."""
