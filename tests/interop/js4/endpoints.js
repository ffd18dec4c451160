// Durable Endpoints on the official Inngest TypeScript SDK (`inngest@4` from npm), written as a
// user would write them: `inngest.endpoint(handler)` served by `inngest/node`. Run by
// tests/interop/test_endpoints.py; every step body appends a line to OUTLAST_TEST_EFFECTS.
const fs = require("node:fs");
const { Inngest, step } = require("inngest");
const { createEndpointServer, endpointAdapter } = require("inngest/node");

const inngest = new Inngest({ id: "js4-endpoints", endpointAdapter });
const effect = (name) => {
  if (process.env.OUTLAST_TEST_EFFECTS) fs.appendFileSync(process.env.OUTLAST_TEST_EFFECTS, `${name}\n`);
};
const ran = (name) =>
  process.env.OUTLAST_TEST_EFFECTS && fs.existsSync(process.env.OUTLAST_TEST_EFFECTS)
    ? fs.readFileSync(process.env.OUTLAST_TEST_EFFECTS, "utf8").split("\n").filter((l) => l === name).length
    : 0;

const routes = {
  // two steps, answered in the request
  "/quick": async (url) => {
    const n = Number(url.searchParams.get("n") || 0);
    const a = await step.run("a", () => { effect(`a:${n}`); return n + 1; });
    const b = await step.run("b", () => { effect(`b:${n}`); return a * 2; });
    return Response.json({ a, b }, { status: 201, headers: { "x-endpoint": "quick" } });
  },
  // a sleep: the run goes on in the background and the caller is redirected to its output
  "/slow": async (url) => {
    const n = Number(url.searchParams.get("n") || 0);
    const before = await step.run("before", () => { effect(`before:${n}`); return n; });
    await step.sleep("nap", "2s");
    const after = await step.run("after", () => { effect(`after:${n}`); return before + 100; });
    return { before, after };
  },
  // a step that throws on its first attempt: retried in the background, as Inngest does
  "/flaky": async () => {
    const value = await step.run("flaky", () => {
      effect("flaky");
      if (ran("flaky") < 2) throw new Error("flaky failed on its first attempt");
      return "second time lucky";
    });
    return { value };
  },
  // two steps at once: the run goes on in the background, each step called on its own
  "/parallel": async () => {
    const [x, y] = await Promise.all([
      step.run("x", () => { effect("x"); return "x"; }),
      step.run("y", () => { effect("y"); return "y"; }),
    ]);
    return { both: x + y };
  },
  // a wait for an event: resumed through the endpoint when the event comes
  "/wait": async (url) => {
    const approval = await step.waitForEvent("approval", {
      event: "js4/approve",
      timeout: "1m",
      if: `async.data.id == "${url.searchParams.get("id")}"`,
    });
    return { approved: approval ? approval.data.by : null };
  },
  // a step that hangs on its first attempt (the test kills the app then): resumed once the
  // request's hold on the run lapses
  "/hang": async () => {
    const first = await step.run("first", () => { effect("first"); return 1; });
    const second = await step.run("hang", async () => {
      effect("hang");
      if (ran("hang") < 2) await new Promise(() => {});
      return first + 1;
    });
    return { second };
  },
  // the handler itself throws once (outside any step): retried in the background
  "/throws": async () => {
    effect("throws");
    if (ran("throws") < 2) throw new Error("the handler failed on its first attempt");
    return { ok: true };
  },
};

const handler = inngest.endpoint(async (req) => {
  const url = new URL(req.url);
  const route = routes[url.pathname];
  if (!route) return new Response("no such endpoint", { status: 404 });
  return route(url);
});

createEndpointServer(handler).listen(Number(process.env.PORT), "127.0.0.1");
