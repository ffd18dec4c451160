// A caller of a streaming Durable Endpoint on the official client (`fetchWithStream` from
// `inngest/experimental/durable-endpoints/client`): it follows the stream's redirect itself.
// Prints one JSON line per callback, then the response: {"data"}, {"commit"}, {"response"}.
const { fetchWithStream } = require("inngest/experimental/durable-endpoints/client");

const out = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

(async () => {
  const res = await fetchWithStream(process.argv[2], {
    onMetadata: ({ runId }) => out({ metadata: runId }),
    onData: ({ data }) => out({ data }),
    onCommit: ({ hashedStepId }) => out({ commit: hashedStepId }),
    onRollback: ({ hashedStepId }) => out({ rollback: hashedStepId }),
  });
  out({ response: { status: res.status, body: await res.json() } });
  process.exit(0);
})().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
