"""Ingest: files become documents (readers per format) and documents become chunks
(sentence-aware, each with its character span and page)."""
