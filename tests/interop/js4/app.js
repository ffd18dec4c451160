// An Express app on the official Inngest TypeScript SDK (`inngest@4` from npm), written as a
// user would write it (v4: triggers inside the options). Run by tests/interop; every step body
// appends a line to OUTLAST_TEST_EFFECTS so tests can assert that no committed step ran twice.
const fs = require("node:fs");
const express = require("express");
const { Inngest } = require("inngest");
const { serve } = require("inngest/express");

const inngest = new Inngest({ id: process.env.JS_APP_ID || "js4-app" });
const effect = (name) => fs.appendFileSync(process.env.OUTLAST_TEST_EFFECTS, `${name}\n`);

const steps = inngest.createFunction(
  { id: "steps", triggers: [{ event: "js4/steps" }] },
  async ({ event, step }) => {
    const a = await step.run("one", () => { effect(`one:${event.data.n}`); return 1; });
    const b = await step.run("two", () => { effect(`two:${event.data.n}`); return a + 1; });
    const c = await step.run("three", () => { effect(`three:${event.data.n}`); return b + 1; });
    return { a, b, c, n: event.data.n };
  },
);

const app = express();
app.use(express.json({ limit: "10mb" }));
app.use("/api/inngest", serve({ client: inngest, functions: [steps] }));
app.listen(Number(process.env.PORT), "127.0.0.1");
