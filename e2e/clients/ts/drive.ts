// Drives the daemon through a TypeScript client generated from its served OpenAPI document
// (openapi-typescript types, openapi-fetch calls; scripts/client-gen.sh type-checks this file
// against them, then runs it): registers a gateway, spawns with an idempotency key (twice: the
// same spawn), runs a rolling restart and follows its operation, and reads the event list (the
// SSE stream, through the same client). Environment: GS_URL, GS_KEY, GS_GATEWAY_PORT,
// GS_GATEWAY_TOKEN.
import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const DEADLINE_MS = 60_000;
const client = createClient<paths>({ baseUrl: env("GS_URL"), headers: { "x-api-key": env("GS_KEY") } });

function fail(what: string): never {
  console.error(`typescript client: ${what}`);
  process.exit(1);
}

async function wait<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + DEADLINE_MS;
  let last: unknown;
  while (Date.now() < end) {
    const got = await check();
    if (got !== undefined) return got;
    last = got;
    await new Promise((r) => setTimeout(r, 200));
  }
  fail(`${what}: not within ${DEADLINE_MS} ms (last: ${JSON.stringify(last)})`);
}

const created = await client.POST("/api/gateways", {
  body: { name: "typescript-client", host: "127.0.0.1", port: Number(env("GS_GATEWAY_PORT")), token: env("GS_GATEWAY_TOKEN") },
});
if (!created.data) fail(`register: ${JSON.stringify(created.error)}`);
const gatewayId: number = created.data.gateway.id;
await wait("the gateway online", async () => {
  const { data } = await client.GET("/api/gateways/{id}", { params: { path: { id: gatewayId } } });
  return data?.gateway.status === "online" ? true : undefined;
});

const spawn = () =>
  client.POST("/api/spawn", {
    params: { header: { "Idempotency-Key": "client-ts-1" } },
    body: { agent: "main", task: "say pong", gateway_id: gatewayId },
  });
const first = await spawn();
const again = await spawn();
if (!first.data || !again.data) fail(`spawn: ${JSON.stringify(first.error ?? again.error)}`);
if (first.data.spawn_id !== again.data.spawn_id) fail("the idempotency key started a second spawn");
const spawnId = first.data.spawn_id;
await wait("the spawn over", async () => {
  const { data } = await client.GET("/api/spawn/{id}", { params: { path: { id: spawnId } } });
  return data && !["pending", "running"].includes(data.status) ? true : undefined;
});

const stream = await client.GET("/api/events", { params: { query: { types: "operation.progress" } }, parseAs: "stream" });
if (!stream.response.ok || !stream.data) fail(`the event list: ${stream.response.status}`);
const reader = (stream.data as ReadableStream<Uint8Array>).getReader();
const decoder = new TextDecoder();

const started = await client.POST("/api/fleet/restart", { body: { gateway_ids: [gatewayId], wait_ready_seconds: 30 } });
if (!started.data) fail(`rolling restart: ${JSON.stringify(started.error)}`);
const opId: string = started.data.operation.id;

let heard: { type: string } | undefined;
let buffered = "";
const until = Date.now() + DEADLINE_MS;
while (!heard && Date.now() < until) {
  const { value, done } = await reader.read();
  if (done) break;
  buffered += decoder.decode(value, { stream: true });
  for (const line of buffered.split("\n")) {
    if (!line.startsWith("data:")) continue;
    const event = JSON.parse(line.slice(5));
    if (event.payload?.operation_id === opId) heard = event;
  }
  buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
}
await reader.cancel();
if (!heard) fail("no operation.progress event on the event list");

const op = await wait("the rolling restart over", async () => {
  const { data } = await client.GET("/api/operations/{id}", { params: { path: { id: opId } } });
  return data && data.operation.state !== "running" ? data.operation : undefined;
});
if (op.state !== "succeeded" || op.gateways[0]?.step !== "done") fail(`the rolling restart: ${JSON.stringify(op)}`);
console.log(`typescript client: registered ${gatewayId}, spawn ${spawnId} once, operation ${opId} ${op.state}, event ${heard.type}`);
