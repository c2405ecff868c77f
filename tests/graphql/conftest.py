import json
import re
from pathlib import Path

import pytest
from django.test import Client

README = Path(__file__).resolve().parent.parent.parent / "README.md"


class GraphQLClient:
    """Posts to the real /graphql view, like an app: JSON body, no cookies unless logged in."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def post(self, query: str, variables: dict | None = None, **extra):
        return self.client.post(
            "/graphql", json.dumps({"query": query, "variables": variables or {}}), content_type="application/json",
            **extra,
        )  # fmt: skip

    def __call__(self, query: str, variables: dict | None = None) -> dict:
        response = self.post(query, variables)
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def errors(self, query: str, variables: dict | None = None) -> list[str]:
        response = self.post(query, variables)
        assert response.status_code in (200, 400), response.status_code
        return [e["message"] for e in response.json()["errors"]]


@pytest.fixture
def gql(db, client) -> GraphQLClient:
    return GraphQLClient(client)


def readme_examples() -> dict[str, str]:
    section = README.read_text().split("<!-- graphql-examples:start -->")[1].split("<!-- graphql-examples:end -->")[0]
    blocks = re.findall(r"```graphql\n(.*?)```", section, re.S)
    return {re.search(r"# example: ([\w-]+)", b).group(1): b for b in blocks}
