"""Vector search shared by every model: faiss / Milvus indexes, a planner, metrics and de-duplication."""
from acg2vec_lab.retrieval.index import INDEX_KINDS, IndexSpec, VectorIndex, default_nlist  # noqa: F401
