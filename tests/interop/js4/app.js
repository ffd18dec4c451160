// An Express app on the official Inngest TypeScript SDK (`inngest@4` from npm), written as a
// user would write it (v4: triggers inside the options). Run by tests/interop; every step body
// appends a line to OUTLAST_TEST_EFFECTS (when set) so tests can assert that no committed step
// ran twice. The publisher publishes realtime messages (tests/interop/test_realtime_interop.py).
const fs = require("node:fs");
const express = require("express");
const { Inngest, NonRetriableError, realtime } = require("inngest");
const { serve } = require("inngest/express");
const { createDefer } = require("inngest/experimental");

const inngest = new Inngest({ id: process.env.JS_APP_ID || "js4-app" });
const effect = (name) => {
  if (process.env.OUTLAST_TEST_EFFECTS) fs.appendFileSync(process.env.OUTLAST_TEST_EFFECTS, `${name}\n`);
};

const steps = inngest.createFunction(
  { id: "steps", triggers: [{ event: "js4/steps" }] },
  async ({ event, step }) => {
    const a = await step.run("one", () => { effect(`one:${event.data.n}`); return 1; });
    const b = await step.run("two", () => { effect(`two:${event.data.n}`); return a + 1; });
    const c = await step.run("three", () => { effect(`three:${event.data.n}`); return b + 1; });
    return { a, b, c, n: event.data.n };
  },
);

// two steps (checkpointed), then a parallel group, then a step after it
const fanIn = inngest.createFunction(
  { id: "fan-in", triggers: [{ event: "js4/fan-in" }] },
  async ({ event, step }) => {
    const n = event.data.n;
    const a = await step.run("first", () => { effect(`first:${n}`); return 1; });
    const b = await step.run("second", () => { effect(`second:${n}`); return a + 1; });
    const [l, r] = await Promise.all([
      step.run("left", () => { effect(`left:${n}`); return b * 10; }),
      step.run("right", () => { effect(`right:${n}`); return b * 100; }),
    ]);
    return await step.run("total", () => { effect(`total:${n}`); return a + b + l + r; });
  },
);

// defer(): the deferred function runs once its parent has ended, with the data it was given
const later = createDefer(inngest, { id: "later" }, async ({ event, step }) => {
  const n = await step.run("record", () => { effect(`deferred:${event.data.n}`); return event.data.n; });
  return { n, keys: Object.keys(event.data).sort() };
});

// each twice: with v4's default async checkpointing (the defer ops ride on a checkpoint) and
// without (they ride on the response with the step result that follows them)
const deferringFunctions = ["", "-plain"].map((suffix) => [
  inngest.createFunction(
    { id: `deferring${suffix}`, checkpointing: suffix === "", triggers: [{ event: `js4/defer${suffix}` }] },
    async ({ event, step, defer }) => {
      await step.run("before", () => 1);
      defer("later-1", { function: later, data: { n: event.data.n } });
      await step.run("after", () => { effect(`parent-after:${event.data.n}`); return 2; });
      await step.run("last", () => 3);
      return "parent done";
    },
  ),
  // a defer aborted in a later call than the one that reported it, and one aborted at once
  inngest.createFunction(
    { id: `aborting${suffix}`, checkpointing: suffix === "", triggers: [{ event: `js4/defer-abort${suffix}` }] },
    async ({ event, step, defer }) => {
      defer("kept", { function: later, data: { n: event.data.n } });
      const dropped = defer("dropped", { function: later, data: { n: -event.data.n } });
      const never = defer("never", { function: later, data: { n: 1000 + event.data.n } });
      never.abort();
      await step.sleep("pause", "1s");
      dropped.abort();
      await step.run("after", () => 2);
      return "aborted two";
    },
  ),
]).flat();

// the parent fails after its defer: Inngest still schedules the defer when the run ends
const failing = inngest.createFunction(
  { id: "defer-then-fail", retries: 0, triggers: [{ event: "js4/defer-fail" }] },
  async ({ event, step, defer }) => {
    await step.run("before", () => 1);
    defer("still", { function: later, data: { n: event.data.n } });
    await step.run("boom", () => { throw new NonRetriableError("the parent failed"); });
  },
);

// race mode: the function goes on with the first branch to finish, the slow one still runs
const race = inngest.createFunction(
  { id: "race", triggers: [{ event: "js4/race" }] },
  async ({ step, group }) => {
    const winner = await group.parallel(async () => Promise.race([
      step.run("fast", () => { effect("fast"); return "fast"; }),
      step.run("slow", async () => {
        effect("slow:start");
        await new Promise((resolve) => setTimeout(resolve, 3000));
        return "slow";
      }),
    ]));
    return await step.run("after", () => { effect("after"); return `${winner} won`; });
  },
);

// race mode with a losing branch of several steps: the function goes on with the winner at once;
// the loser's sleep, already under way, is finished, and its "late" step is never reached
const raceBranches = inngest.createFunction(
  { id: "race-branches", triggers: [{ event: "js4/race-branches" }] },
  async ({ step, group }) => {
    const winner = await group.parallel(async () => Promise.race([
      step.run("quick", () => { effect("quick"); return "quick"; }),
      (async () => {
        await step.sleep("nap", "4s");
        return await step.run("late", () => { effect("late"); return "late"; });
      })(),
    ]));
    return await step.run("then", () => { effect("then"); return `${winner} won`; });
  },
);

// step.fetch: the server makes the request, durably; the response is the step's output
const fetcher = inngest.createFunction(
  { id: "fetcher", retries: 1, triggers: [{ event: "js4/fetch" }] },
  async ({ event, step }) => {
    const res = await step.fetch(event.data.url, {
      method: "POST",
      headers: { authorization: "Bearer s3cret-token", "content-type": "application/json" },
      body: JSON.stringify({ n: event.data.n }),
    });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text), type: res.headers.get("content-type") };
  },
);

// step.ai.infer: the server makes the inference (an OpenAI-compatible provider), durably
const inferrer = inngest.createFunction(
  { id: "inferrer", retries: 1, triggers: [{ event: "js4/infer" }] },
  async ({ event, step }) => {
    const answer = await step.ai.infer("ask", {
      model: step.ai.models.openai({ model: "gpt-test", apiKey: "sk-s3cret-key", baseUrl: event.data.base_url }),
      body: { messages: [{ role: "user", content: event.data.prompt }] },
    });
    return { said: answer.choices[0].message.content, model: answer.model };
  },
);

const progress = realtime.channel({ name: (id) => `progress:${id}`, topics: { status: {} } });

const publisher = inngest.createFunction(
  { id: "publisher", triggers: [{ event: "js4/publish" }] },
  async ({ event, step }) => {
    const channel = progress(event.data.id);
    await step.realtime.publish("started", channel.status, { stage: "started" });
    const n = await step.run("work", () => 41 + 1);
    await step.realtime.publish("finished", channel.status, { stage: "finished", n });
    return n;
  },
);

const app = express();
app.use(express.json({ limit: "20mb" }));
// every call request is counted, so tests can say what a run cost
app.use("/api/inngest", (req, _res, next) => {
  if (req.method === "POST") effect(`request:${req.query.fnId}`);
  next();
});
app.use("/api/inngest", serve({ client: inngest, functions: [steps, fanIn, ...deferringFunctions, failing, later, race, raceBranches, fetcher, inferrer, publisher] }));
app.listen(Number(process.env.PORT), "127.0.0.1");
