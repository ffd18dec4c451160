// An Express app on the official Inngest TypeScript SDK (`inngest@3` from npm), written as a
// user would write it. Run by tests/interop; every step body appends a line to
// OUTLAST_TEST_EFFECTS so tests can assert that no committed step ran twice.
const fs = require("node:fs");
const express = require("express");
const { Inngest, NonRetriableError } = require("inngest");
const { serve } = require("inngest/express");

const inngest = new Inngest({ id: process.env.JS_APP_ID || "js-app" });
const effect = (name) => fs.appendFileSync(process.env.OUTLAST_TEST_EFFECTS, `${name}\n`);

const steps = inngest.createFunction(
  { id: "steps" },
  { event: "js/steps" },
  async ({ event, step }) => {
    const a = await step.run("one", () => { effect(`one:${event.data.n}`); return 1; });
    const b = await step.run("two", () => { effect(`two:${event.data.n}`); return a + 1; });
    await step.sleep("nap", "1s");
    await step.sleepUntil("until", new Date(Date.now() + 500));
    return { a, b, n: event.data.n };
  },
);

const parallel = inngest.createFunction(
  { id: "parallel" },
  { event: "js/parallel" },
  async ({ step }) => {
    const branch = (name) => step.run(name, async () => {
      effect(`branch:${name}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      return name;
    });
    const results = await Promise.all([branch("left"), branch("right"), branch("middle")]);
    const after = await step.run("after", () => "after");
    return [...results, after];
  },
);

const waiter = inngest.createFunction(
  { id: "waiter" },
  { event: "js/wait" },
  async ({ event, step }) => {
    const got = await step.waitForEvent("approval", {
      event: "js/approved", timeout: event.data.timeout || "30s", if: "event.data.id == async.data.id",
    });
    return { approved: got ? got.data : null };
  },
);

const signalWaiter = inngest.createFunction(
  { id: "signal-waiter" },
  { event: "js/signal-wait" },
  async ({ event, step }) => {
    const got = await step.waitForSignal("approval", { signal: event.data.signal, timeout: "30s", onConflict: "fail" });
    return { got };
  },
);

const signalSender = inngest.createFunction(
  { id: "signal-sender" },
  { event: "js/signal-send" },
  async ({ event, step }) => {
    const sent = await step.sendSignal("send", { signal: event.data.signal, data: event.data.data });
    return { run_id: sent ? sent.runId || null : null };
  },
);

const child = inngest.createFunction(
  { id: "child" },
  { event: "js/child" },
  async ({ event }) => {
    if (event.data.fail) throw new NonRetriableError("child refused");
    return { doubled: event.data.x * 2 };
  },
);

const parent = inngest.createFunction(
  { id: "parent" },
  { event: "js/parent" },
  async ({ event, step }) => {
    try {
      return await step.invoke("call-child", { function: child, data: event.data });
    } catch (err) {
      return { child_failed: err.message };
    }
  },
);

const sender = inngest.createFunction(
  { id: "sender" },
  { event: "js/send" },
  async ({ step }) => {
    const { ids } = await step.sendEvent("fan-out", [0, 1].map((i) => ({ name: "js/sent", data: { i } })));
    return ids;
  },
);

const receiver = inngest.createFunction({ id: "receiver" }, { event: "js/sent" }, async ({ event }) => event.data);

const flaky = inngest.createFunction(
  { id: "flaky", retries: 2 },
  { event: "js/flaky" },
  async ({ step, attempt }) => step.run("unsteady", () => {
    effect(`flaky:${attempt}`);
    if (attempt < 2) throw new Error(`attempt ${attempt} fails`);
    return `ok at ${attempt}`;
  }),
);

const doomed = inngest.createFunction(
  {
    id: "doomed",
    retries: 1,
    onFailure: async ({ error }) => { effect(`on-failure:${error.message}`); },
  },
  { event: "js/doomed" },
  async () => { throw new NonRetriableError("doomed from the start"); },
);

const limited = inngest.createFunction(
  {
    id: "limited",
    rateLimit: { limit: 1, period: "1m", key: "event.data.user" },
    concurrency: { limit: 1, key: "event.data.user" },
    throttle: { limit: 10, period: "1s" },
  },
  { event: "js/limited" },
  async ({ event }) => event.data.user,
);

const batched = inngest.createFunction(
  { id: "batched", batchEvents: { maxSize: 3, timeout: "5s" } },
  { event: "js/batch" },
  async ({ events }) => events.map((e) => e.data.i),
);

const debounced = inngest.createFunction(
  { id: "debounced", debounce: { period: "1s", key: "event.data.key" } },
  { event: "js/debounce" },
  async ({ event }) => event.data.i,
);

const app = express();
app.use(express.json({ limit: "20mb" }));
app.use("/api/inngest", serve({
  client: inngest,
  functions: [steps, parallel, waiter, signalWaiter, signalSender, child, parent, sender, receiver, flaky, doomed, limited, batched, debounced],
}));
app.listen(Number(process.env.PORT), "127.0.0.1");
