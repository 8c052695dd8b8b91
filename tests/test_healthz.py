"""GET /healthz tells a load balancer whether this process can serve."""

import pytest
from django.test import Client


@pytest.mark.django_db
def test_healthz_answers_200_json_when_the_database_is_up(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "checks": {"database": {"ok": True}}}
