"""Outbound notifications: webhook URL vetting (SSRF guard), signatures and e-mail."""
