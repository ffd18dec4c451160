// A Connect worker on the official Inngest TypeScript SDK (`inngest@4` from npm), written as a
// user would write it: it dials out to outlast over one WebSocket and serves no HTTP port. Run by
// tests/interop/test_connect.py (Node 20 needs --experimental-websocket); every step body appends
// a line to OUTLAST_TEST_EFFECTS so tests can assert that no committed step ran twice.
const fs = require("node:fs");
const { Inngest } = require("inngest");
const { connect } = require("inngest/connect");

const inngest = new Inngest({ id: process.env.JS_APP_ID || "js-connect" });
const effect = (name) => fs.appendFileSync(process.env.OUTLAST_TEST_EFFECTS, `${name}\n`);

const steps = inngest.createFunction(
  { id: "steps", triggers: [{ event: "jsc/steps" }] },
  async ({ event, step }) => {
    const a = await step.run("one", () => { effect(`one:${event.data.n}`); return 1; });
    const b = await step.run("two", () => { effect(`two:${event.data.n}`); return a + 1; });
    await step.sleep("nap", "1s");
    return { a, b, n: event.data.n };
  },
);

const parallel = inngest.createFunction(
  { id: "parallel", triggers: [{ event: "jsc/parallel" }] },
  async ({ step }) => {
    const branch = (name) => step.run(name, async () => {
      effect(`branch:${name}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      return name;
    });
    const results = await Promise.all([branch("left"), branch("right")]);
    return [...results, await step.run("after", () => "after")];
  },
);

const flaky = inngest.createFunction(
  { id: "flaky", retries: 2, triggers: [{ event: "jsc/flaky" }] },
  async ({ step, attempt }) => step.run("unsteady", () => {
    effect(`flaky:${attempt}`);
    if (attempt < 2) throw new Error(`attempt ${attempt} fails`);
    return `ok at ${attempt}`;
  }),
);

const waiter = inngest.createFunction(
  { id: "waiter", triggers: [{ event: "jsc/wait" }] },
  async ({ step }) => {
    const got = await step.waitForEvent("approval", {
      event: "jsc/approved", timeout: "30s", if: "event.data.id == async.data.id",
    });
    return { approved: got ? got.data : null };
  },
);

connect({ apps: [{ client: inngest, functions: [steps, parallel, flaky, waiter] }], instanceId: "js-connect-worker" })
  .catch((err) => { console.error(err); process.exit(1); });
