"""Principals and credentials: console sessions, API keys, and (later) embed tokens."""
