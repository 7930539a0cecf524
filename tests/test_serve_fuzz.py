"""Fuzz every operation of the OpenAPI schema: whatever a client sends, no answer is a 5xx."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valle.infer import VallE
from valle.serve import ServeConfig, create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(model_dir, tmp_path_factory):
    app = create_app(ServeConfig(data_dir=tmp_path_factory.mktemp("fuzz"), max_text_chars=120), VallE.from_pretrained(model_dir))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_request_makes_the_server_fail(api_schema):
    """Schemathesis' strategies per operation, driven by Hypothesis directly (its pytest plugin lags pytest)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def no_5xx(case) -> None:
            response = case.call()
            assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"

        no_5xx()


@pytest.fixture(scope="module")
def client(model_dir, tmp_path_factory):
    from fastapi.testclient import TestClient

    app = create_app(ServeConfig(data_dir=tmp_path_factory.mktemp("fuzz"), max_text_chars=120), VallE.from_pretrained(model_dir))
    with TestClient(app) as client:
        yield client


@given(text=st.text(max_size=150), temperature=st.floats(-1, 3) | st.just(float("nan")), top_k=st.integers(-5, 2000),
       top_p=st.floats(-0.5, 1.5) | st.just(float("nan")), seed=st.integers(-10, 2**33))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_text_and_sampling_with_a_real_voice_never_fails_the_server(client, text, temperature, top_k, top_p, seed):
    """Reaches the model: the schema fuzz above rarely names a voice that exists."""
    form = {"text": text, "voice_id": "fl000", "temperature": str(temperature), "top_k": str(top_k), "top_p": str(top_p),
            "seed": str(seed)}
    response = client.post("/v1/synthesize", data=form)
    assert response.status_code in (200, 413, 422), (form, response.status_code, response.text[:300])
    assert response.status_code != 200 or response.headers["content-type"] == "audio/wav"
