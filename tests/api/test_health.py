from tests.support import ParseClient


def test_health_needs_no_app_id(client: ParseClient) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_app_id_is_unauthorized(client: ParseClient) -> None:
    response = client.http.get("/classes/Anything", headers={"X-Parse-Application-Id": "nope"})
    assert response.status_code == 403
    assert response.json() == {"error": "unauthorized"}


def test_wrong_master_key_is_unauthorized(client: ParseClient) -> None:
    response = client.get("/classes/Anything", headers={"X-Parse-Master-Key": "wrong"})
    assert response.status_code == 403
