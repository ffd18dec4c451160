// The bench's 3-step function on the official Inngest TypeScript SDK (inngest@3 or inngest@4,
// whichever NODE_PATH finds: bench.http_driver points it at tests/interop/js or js4), served by
// Express. Each step returns the wall time its body started, in seconds; GET /requests says how
// many call requests the app has answered.
const express = require("express");
const { Inngest } = require("inngest");
const { serve } = require("inngest/express");

const inngest = new Inngest({ id: "bench-http" });
const v4 = Number(process.env.BENCH_INNGEST_MAJOR) >= 4;
const handler = async ({ step }) => {
  const out = [];
  for (const name of ["a", "b", "c"]) out.push(await step.run(name, () => Date.now() / 1000));
  return out;
};
const threeSteps = v4
  ? inngest.createFunction({ id: "three-steps", triggers: [{ event: "bench/go" }] }, handler)
  : inngest.createFunction({ id: "three-steps" }, { event: "bench/go" }, handler);

let requests = 0;
const app = express();
app.use(express.json({ limit: "10mb" }));
app.get("/requests", (_req, res) => res.json({ requests }));
app.use("/api/inngest", (req, _res, next) => {
  if (req.method === "POST") requests += 1;
  next();
});
app.use("/api/inngest", serve({ client: inngest, functions: [threeSteps] }));
app.listen(Number(process.env.PORT), "127.0.0.1");
