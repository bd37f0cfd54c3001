"""Access rules for the operators' pages: /healthz is for anyone (a load balancer has no login); /metrics needs
METRICS_TOKEN, which the matrix's archive does not set, so it is a 404 for every role."""

from __future__ import annotations

from tests.access_rules import Rule, public

POLICY: dict[tuple[str, str], Rule] = {
    ("ops.healthz", "GET"): public,
    ("ops.metrics", "GET"): lambda role, state: 404,
}
