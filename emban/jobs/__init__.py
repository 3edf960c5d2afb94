"""Background jobs: plain ``async def job(ctx, *ids)`` functions run by arq or in-process."""
