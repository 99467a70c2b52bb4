"""Bulk embedding and tagging of large image collections as a Ray Data pipeline (:mod:`.ray_pipeline`)."""
