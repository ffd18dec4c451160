// Streaming Durable Endpoints on the official Inngest TypeScript SDK (`inngest@4` from npm):
// `stream.push` / `stream.pipe` inside steps, as a user writes them. Run by
// tests/interop/test_endpoint_streams.py; every step body appends a line to OUTLAST_TEST_EFFECTS.
const fs = require("node:fs");
const { Inngest, step } = require("inngest");
const { createEndpointServer, endpointAdapter } = require("inngest/node");
const { stream } = require("inngest/experimental/durable-endpoints");

const inngest = new Inngest({ id: "js4-endpoint-streams", endpointAdapter });
const effect = (name) => {
  if (process.env.OUTLAST_TEST_EFFECTS) fs.appendFileSync(process.env.OUTLAST_TEST_EFFECTS, `${name}\n`);
};
const ran = (name) =>
  process.env.OUTLAST_TEST_EFFECTS && fs.existsSync(process.env.OUTLAST_TEST_EFFECTS)
    ? fs.readFileSync(process.env.OUTLAST_TEST_EFFECTS, "utf8").split("\n").filter((l) => l === name).length
    : 0;

const routes = {
  // streams while the request runs it: the caller gets every chunk and the response in one stream
  "/sync": async () => {
    await step.run("write", () => {
      effect("write");
      stream.push("one");
      stream.push({ two: 2 });
    });
    return Response.json({ done: "sync" });
  },
  // streams, sleeps (the run goes on in the background), streams again: the caller follows the
  // stream's redirect to Outlast, which relays what the background attempts stream
  "/async": async () => {
    await step.run("before", () => {
      effect("before");
      stream.push("before the nap");
    });
    await step.sleep("nap", "1s");
    await step.run("after", async () => {
      effect("after");
      stream.push("after the nap");
      await stream.pipe(async function* () {
        yield "piped ";
        yield "café";
      });
    });
    return Response.json({ done: "async" });
  },
  // a step that streams, then throws on its first attempt: the caller is told to roll back what
  // that attempt streamed, and gets the retry's chunks (run in the background) through the redirect
  "/retry": async () => {
    const value = await step.run("flaky", () => {
      effect("flaky");
      const attempt = ran("flaky");
      stream.push(`attempt ${attempt}`);
      if (attempt < 2) throw new Error("the first attempt fails");
      return attempt;
    });
    return Response.json({ value });
  },
};

const handler = inngest.endpoint(async (req) => {
  const url = new URL(req.url);
  const route = routes[url.pathname];
  if (!route) return new Response("no such endpoint", { status: 404 });
  return route(url);
});

createEndpointServer(handler).listen(Number(process.env.PORT), "127.0.0.1");
