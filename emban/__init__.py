"""Emban: self-hostable customer-facing analytics."""
