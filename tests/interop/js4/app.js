// An Express app on the official Inngest TypeScript SDK v4 (`inngest@4` from npm), publishing
// realtime messages as a user would. Run by tests/interop/test_realtime_interop.py.
const express = require("express");
const { Inngest, realtime } = require("inngest");
const { serve } = require("inngest/express");

const inngest = new Inngest({ id: process.env.JS_APP_ID || "js4-app" });
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
app.use("/api/inngest", serve({ client: inngest, functions: [publisher] }));
app.listen(Number(process.env.PORT), "127.0.0.1");
