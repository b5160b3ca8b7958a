"""Drives the daemon through the Python client openapi-python-client generated from its served
OpenAPI document (scripts/client-gen.sh): registers a gateway, spawns with an idempotency key
(twice: the same spawn), runs a rolling restart and follows its operation, and reads the event
list (the SSE stream, through the generated client's own HTTP client). Every response is read
as the generated model: a response the generator dropped would be `None` here and fail.

Environment: GS_URL, GS_KEY, GS_GATEWAY_PORT, GS_GATEWAY_TOKEN; the generated package on
PYTHONPATH as `gateway_supervisor_client`.
"""

import json
import os
import sys
import time

from gateway_supervisor_client import AuthenticatedClient
from gateway_supervisor_client.api.gateways import gateways_create, gateways_get
from gateway_supervisor_client.api.operations import (
    operations_get,
    operations_rolling_restart,
)
from gateway_supervisor_client.api.spawn import spawn_create, spawn_get
from gateway_supervisor_client.models import (
    CreateGatewayRequest,
    GatewayEnvelope,
    OperationEnvelope,
    RollingRestartRequest,
    SpawnAccepted,
    SpawnRequest,
    StepName,
)

DEADLINE = 60.0


def wait(what, check):
    """`check()` until it returns something, for at most DEADLINE seconds."""
    end = time.monotonic() + DEADLINE
    last = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    sys.exit(f"python client: {what}: not within {DEADLINE}s (last: {last!r})")


def expect(value, kind, what):
    if not isinstance(value, kind):
        sys.exit(f"python client: {what}: expected {kind.__name__}, got {value!r}")
    return value


client = AuthenticatedClient(base_url=os.environ["GS_URL"], token=os.environ["GS_KEY"])

created = gateways_create.sync(
    client=client,
    body=CreateGatewayRequest(
        name="python-client",
        host="127.0.0.1",
        port=int(os.environ["GS_GATEWAY_PORT"]),
        token=os.environ["GS_GATEWAY_TOKEN"],
    ),
)
gateway_id = expect(created, GatewayEnvelope, "register").gateway.id
wait(
    "the gateway online",
    lambda: (g := gateways_get.sync(id=gateway_id, client=client))
    and g.gateway.status == "online",
)

request = SpawnRequest(agent="main", task="say pong", gateway_id=gateway_id)
first = expect(
    spawn_create.sync(client=client, body=request, idempotency_key="client-py-1"),
    SpawnAccepted,
    "spawn",
)
again = expect(
    spawn_create.sync(client=client, body=request, idempotency_key="client-py-1"),
    SpawnAccepted,
    "spawn again",
)
if again.spawn_id != first.spawn_id:
    sys.exit(f"python client: the idempotency key started a second spawn: {first.spawn_id} {again.spawn_id}")
wait(
    "the spawn over",
    lambda: (s := spawn_get.sync(id=first.spawn_id, client=client))
    and s.status.value not in ("pending", "running"),
)

with client.get_httpx_client().stream(
    "GET", "/api/events", params={"types": "operation.progress"}, timeout=DEADLINE
) as events:
    started = expect(
        operations_rolling_restart.sync(
            client=client,
            body=RollingRestartRequest(gateway_ids=[gateway_id], wait_ready_seconds=30),
        ),
        OperationEnvelope,
        "rolling restart",
    )
    op_id = started.operation.id
    heard = None
    for line in events.iter_lines():
        if line.startswith("data:"):
            event = json.loads(line[5:])
            if event.get("payload", {}).get("operation_id") == op_id:
                heard = event
                break
    if heard is None:
        sys.exit("python client: no operation.progress event on the event list")

done = wait(
    "the rolling restart over",
    lambda: (o := operations_get.sync(id=op_id, client=client))
    and o.operation.state.value != "running"
    and o,
)
op = expect(done, OperationEnvelope, "the operation").operation
if op.state.value != "succeeded" or op.gateways[0].step != StepName.DONE:
    sys.exit(f"python client: the rolling restart: {op.to_dict()}")
print(f"python client: registered {gateway_id}, spawn {first.spawn_id} once, operation {op_id} {op.state.value}, event {heard['type']}")
