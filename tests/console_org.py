"""An org seen from the services: its client, ingest key, ids and principals acting in it."""

from __future__ import annotations

from typing import Any

from emban.auth.principal import Principal
from tests.conftest import Client, bearer


class ConsoleOrg:
    """A registered org: the owner's client, the admin key, and principals to call services
    with directly (an admin key, a viewer session)."""

    def __init__(self, client: Client, reg: dict[str, Any]) -> None:
        self.client = client
        self.key: str = reg["api_key"]["key"]
        self.id: str = reg["org"]["id"]
        self.env: str = reg["environments"][0]["id"]
        self.admin = Principal(
            kind="api_key", org_id=self.id, environment_id=self.env, role="admin", scope="admin"
        )
        self.viewer = Principal(
            kind="session", org_id=self.id, environment_id=self.env, role="viewer", scope="session"
        )
        self.dashboard = ""

    async def ingest(self, events: list[dict[str, Any]]) -> None:
        response = await self.client.post(
            "/v1/events", json={"events": events}, headers=bearer(self.key)
        )
        assert response.status in (200, 202), await response.text()
