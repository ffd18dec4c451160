// A subscriber on the official client: `subscribe()` from `inngest/realtime` (inngest@4), as a
// user's backend or browser code calls it. It asks the server for a subscription token
// (POST /v1/realtime/token, through the app's client) unless SUBSCRIBE_TOKEN is given, opens the
// WebSocket (/v1/realtime/connect), prints `ready` once open, then each message as one JSON line,
// and exits after SUBSCRIBE_COUNT messages. A refused connection prints `refused <reason>`.
// Node 20 needs --experimental-websocket (its WebSocket is global from Node 22).
const { Inngest } = require("inngest");
const { subscribe } = require("inngest/realtime");

const channel = process.env.SUBSCRIBE_CHANNEL;
const topics = process.env.SUBSCRIBE_TOPICS.split(",");
const count = Number(process.env.SUBSCRIBE_COUNT || "1");
const print = (line) => process.stdout.write(`${typeof line === "string" ? line : JSON.stringify(line)}\n`);

async function main() {
  const app = new Inngest({ id: "js4-subscriber" });
  const token = process.env.SUBSCRIBE_TOKEN;
  const args = token ? { key: token, channel, topics, apiBaseUrl: process.env.INNGEST_API_BASE_URL } : { app, channel, topics };
  let seen = 0;
  let stream;
  try {
    stream = await subscribe(args);
  } catch (err) {
    print(`refused ${err && err.message ? err.message : String(err && err.type)}`);
    process.exit(0);
  }
  print("ready");
  for await (const message of stream) {
    print({ kind: message.kind, channel: message.channel, topic: message.topic, data: message.data, runId: message.runId });
    seen += 1;
    if (seen >= count) break;
  }
  stream.close();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
