"""Stream processing: stage 1 (per asset) and stage 2 (per borrower) of the credit engine."""
