"""Maintainer tools (notebook building and hygiene); not needed to run the workbook."""
