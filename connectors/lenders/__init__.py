"""Lender delivery: signed webhooks, a resumable live stream and a REST API, per lender."""
