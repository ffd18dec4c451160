"""The runtime: what runs functions. It wires storage and protocol together — the engine (send,
plan, wake), workers that claim and execute, the executor of one attempt, the drivers that reach
user code (in-process or an Inngest SDK app over HTTP), the pruner, synced apps and reruns.

It sits above storage, protocol and the SDK's step and context modules, and below the client,
the server and the command line."""
