"""Live embeds: a bus that carries "what changed" between processes, and the hub that keeps one
cohort per (dashboard, tenant, permissions, filters) and pushes only results that changed."""
