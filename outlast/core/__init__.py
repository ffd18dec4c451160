"""The pure domain: models and views, function configuration and its validation, the op
vocabulary, planning, retries, flow control, expressions, cron, durations and ids. No I/O: core
imports nothing from storage, protocol, runtime, server or the command line."""
