"""`python -m aae reproduce`: runs the notebooks (reproduce), stops them safely (stopping), shows and
cleans their output (runlog) and keeps each results folder's records and tables (summary)."""
