"""Batch tagging shared by every tagger: preprocessing, thresholds, output formats, metrics, pipeline.

A tagger (DeepDanbooru here, JoyTag in :mod:`acg2vec_lab.models.joytag.tagger`) implements the
:class:`~acg2vec_lab.tagging.base.Tagger` protocol; everything else in this package works on its
``(N, n_tags)`` probabilities and its tag list, so both models share thresholds, formats and metrics.
"""
