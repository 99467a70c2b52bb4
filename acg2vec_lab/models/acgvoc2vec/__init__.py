"""acgvoc2vec: a multilingual sentence embedder for anime titles, aliases, tags and synopses."""
