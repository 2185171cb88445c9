"""Index: the stored form of the chunks and how it is kept whole. The store format
(segments, manifest), indexing (incremental updates), the BM25 index (tantivy), repair,
the embedding journal a killed run resumes from, and the vector backends behind one
factory (``qa.index.backends``)."""
