"""One module per ``acg2vec-lab`` subcommand; see :mod:`acg2vec_lab.cli` for the contract."""
