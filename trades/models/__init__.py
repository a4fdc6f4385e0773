"""Trade and reference-data models (re-exported so Django finds them)."""
