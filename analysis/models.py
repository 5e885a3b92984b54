"""Analysis runs (themes, gaps, contradictions) land here in the analysis engine work."""
