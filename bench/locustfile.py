"""Locust users for `bench.load`: readers sending dashboard queries, one editor correcting figures.

Configured by environment variables (bench.load sets them):
LOAD_QUERIES (a JSON file: a list of GraphQL documents), LOAD_EDITOR and LOAD_PASSWORD (the
editor's login; no editor when unset), LOAD_OBSERVATIONS (ids the editor corrects, comma-separated)
and LOAD_CORRECTIONS (a file where each applied correction is appended as "id value").
"""

from __future__ import annotations

import json
import os
import random
import re

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

QUERIES = json.loads(open(os.environ["LOAD_QUERIES"]).read())  # noqa: SIM115
CORRECT = """mutation($id: ID!, $value: Decimal!) {
  correctObservation(id: $id, value: $value, reason: "load test") {
    ... on Observation { correctedValue }
    ... on OperationInfo { messages { message } }
  }
}"""


def graphql(client, body: dict, name: str, headers: dict | None = None) -> dict | None:
    """POST a GraphQL request; any HTTP error or GraphQL error counts as a failure."""
    with client.post(
        "/graphql", json=body, headers={"Accept": "application/json", **(headers or {})}, name=name,
        catch_response=True,
    ) as response:  # fmt: skip
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            return None
        data = response.json()
        if data.get("errors"):
            response.failure(f"GraphQL errors: {data['errors']}")
            return None
        response.success()
        return data["data"]


class Reader(FastHttpUser):
    """A dashboard: the same handful of read queries, again and again."""

    weight = 50
    wait_time = constant(0)

    @task
    def read(self) -> None:
        index = random.randrange(len(QUERIES))
        graphql(self.client, {"query": QUERIES[index]}, name=f"read {index}")


class Editor(FastHttpUser):
    """A data editor logged in to the admin who corrects a figure every second or so."""

    fixed_count = 1 if os.environ.get("LOAD_EDITOR") else 0
    wait_time = constant(1)

    def on_start(self) -> None:
        page = self.client.get("/admin/login/", name="login page").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        self.client.post(
            "/admin/login/",
            data={"username": os.environ["LOAD_EDITOR"], "password": os.environ["LOAD_PASSWORD"],
                  "csrfmiddlewaretoken": token, "next": "/admin/"},
            name="log in",
        )  # fmt: skip
        self.csrf = next(c.value for c in self.client.cookiejar if c.name == "csrftoken")  # rotated at login
        self.ids = [int(i) for i in os.environ["LOAD_OBSERVATIONS"].split(",")]

    @task
    def correct(self) -> None:
        observation, value = random.choice(self.ids), str(random.randrange(1_000_000))
        data = graphql(
            self.client,
            {"query": CORRECT, "variables": {"id": observation, "value": value}},
            name="correct",
            headers={"X-CSRFToken": self.csrf},
        )
        if data and data["correctObservation"].get("correctedValue") == value:
            with open(os.environ["LOAD_CORRECTIONS"], "a") as log:
                log.write(f"{observation} {value}\n")
