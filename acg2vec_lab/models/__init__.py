"""Model implementations of the ACG2vec family, one sub-package per model."""
