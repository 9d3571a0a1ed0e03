"""precache: instant answers for slow LLMs."""

__version__ = "0.1.0"
