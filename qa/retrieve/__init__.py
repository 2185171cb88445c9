"""Retrieve: a question becomes ranked passages (dense and BM25 results fused)."""
