"""Helpers for the tests that drive a real ``emban serve`` over HTTP."""

from __future__ import annotations

import secrets

import aiohttp

PASSWORD = "correct-horse-1"


async def register_org(http: aiohttp.ClientSession, url: str, org_name: str) -> tuple[str, str]:
    """Sign up a new owner and org on the server at ``url``; (the owner's email, the org's admin
    API key)."""
    email = f"{org_name.lower()}-{secrets.token_hex(4)}@acme.test"
    registered = await http.post(
        f"{url}/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": org_name[0], "org_name": org_name},
    )
    assert registered.status == 201, await registered.text()
    return email, (await registered.json())["api_key"]["key"]
