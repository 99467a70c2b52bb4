"""Every model of the workbook, by name: ``get(name)`` -> :class:`~acg2vec_lab.models.registry.ModelSpec`."""
from acg2vec_lab.models.registry import ModelSpec, get, load_tagger, names

__all__ = ["ModelSpec", "get", "load_tagger", "names"]
