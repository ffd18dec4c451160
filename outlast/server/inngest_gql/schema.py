"""The subset of Inngest's dev-server GraphQL schema (`pkg/coreapi/gql.*.graphql` in
inngest/inngest) that the official SDKs' test helpers and harnesses query. Names, types,
nullability and enum values are Inngest's; fields outside the subset are unknown here, and a
query asking for one gets a GraphQL validation error naming it."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLSchema, build_schema

SDL = """
scalar Time
scalar ULID
scalar UUID
scalar Bytes
scalar Unknown
scalar SpanMetadataKind
scalar SpanMetadataScope
scalar SpanMetadataValues

type Query {
  stream(query: StreamQuery!): [StreamItem!]!
  event(query: EventQuery!): Event
  events(query: EventsQuery!): [Event!]
  eventV2(id: ULID!): EventV2!
  functionBySlug(query: FunctionQuery!): Function
  functions: [Function!]
  functionRun(query: FunctionRunQuery!): FunctionRun
  run(runID: String!): FunctionRunV2
  runTraceSpanOutputByID(outputID: String!): RunTraceSpanOutput!
  runTrigger(runID: String!): RunTraceTrigger!
  runTrace(runID: String!): RunTraceSpan!
}

input EventQuery {
  workspaceId: ID! = "local"
  eventId: ID!
}

input EventsQuery {
  workspaceId: ID! = "local"
  lastEventId: ID
}

input FunctionQuery {
  workspaceId: ID! = "local"
  functionSlug: String!
}

input FunctionRunQuery {
  workspaceId: ID! = "local"
  functionRunId: ID!
}

input StreamQuery {
  after: ID
  before: ID
  limit: Int! = 20
  includeInternalEvents: Boolean
}

type Workspace {
  id: ID!
}

type StreamItem {
  id: ID!
  trigger: String!
  type: StreamType!
  createdAt: Time!
  runs: [FunctionRun]
  inBatch: Boolean!
}

enum StreamType {
  EVENT
  CRON
}

type Event {
  id: ULID!
  externalID: String
  workspace: Workspace
  name: String
  createdAt: Time
  payload: String
  schema: String
  status: EventStatus
  pendingRuns: Int
  totalRuns: Int
  raw: String
  functionRuns: [FunctionRun!]
}

enum EventStatus {
  RUNNING
  COMPLETED
  PAUSED
  FAILED
  PARTIALLY_FAILED
  NO_FUNCTIONS
}

type EventV2 {
  envID: UUID!
  id: ULID!
  idempotencyKey: String
  name: String!
  occurredAt: Time!
  raw: String!
  receivedAt: Time!
  runs: [FunctionRunV2!]!
  version: String
}

type Function {
  id: String!
  name: String!
  slug: String!
  config: String!
  concurrency: Int!
  triggers: [FunctionTrigger!]
  url: String!
  appID: String!
}

enum FunctionTriggerTypes {
  EVENT
  CRON
}

type FunctionTrigger {
  type: FunctionTriggerTypes!
  value: String!
  condition: String
}

enum FunctionRunStatus {
  COMPLETED
  FAILED
  CANCELLED
  RUNNING
  QUEUED
  SKIPPED
}

type FunctionRun {
  id: ID!
  functionID: String!
  function: Function
  workspace: Workspace
  event: Event
  events: [Event!]!
  batchID: ULID
  status: FunctionRunStatus
  startedAt: Time
  finishedAt: Time
  output: String
  eventID: ID!
  cron: String
}

type FunctionRunV2 {
  id: ULID!
  appID: UUID!
  functionID: UUID!
  function: Function!
  traceID: String!
  queuedAt: Time!
  startedAt: Time
  endedAt: Time
  status: FunctionRunStatus!
  sourceID: String
  triggerIDs: [ULID!]!
  eventName: String
  isBatch: Boolean!
  batchCreatedAt: Time
  cronSchedule: String
  output: Bytes
  trace(preview: Boolean): RunTraceSpan
  hasAI: Boolean!
  isDeferred: Boolean!
}

enum RunTraceSpanStatus {
  FAILED
  QUEUED
  RUNNING
  COMPLETED
  WAITING
  CANCELLED
  SKIPPED
}

enum StepOp {
  INVOKE
  RUN
  SLEEP
  WAIT_FOR_EVENT
  AI_GATEWAY
  WAIT_FOR_SIGNAL
}

union StepInfo = InvokeStepInfo | SleepStepInfo | WaitForEventStepInfo | RunStepInfo

type InvokeStepInfo {
  triggeringEventID: ULID!
  functionID: String!
  timeout: Time!
  returnEventID: ULID
  runID: ULID
  timedOut: Boolean
}

type SleepStepInfo {
  sleepUntil: Time!
}

type WaitForEventStepInfo {
  eventName: String!
  expression: String
  timeout: Time!
  foundEventID: ULID
  timedOut: Boolean
}

type RunStepInfo {
  type: String
}

type RunTraceSpan {
  appID: UUID!
  functionID: UUID!
  runID: ULID!
  run: FunctionRun!
  spanID: String!
  traceID: String!
  groupID: String
  name: String!
  status: RunTraceSpanStatus!
  attempts: Int
  duration: Int
  outputID: String
  queuedAt: Time!
  scheduledAt: Time
  startedAt: Time
  endedAt: Time
  childrenSpans: [RunTraceSpan!]!
  stepOp: StepOp
  stepID: String
  stepInfo: StepInfo
  stepType: String!
  isRoot: Boolean!
  parentSpanID: String
  isUserland: Boolean!
  debugPaused: Boolean!
  skipReason: String
  metadata: [SpanMetadata!]!
}

type SpanMetadata {
  scope: SpanMetadataScope!
  kind: SpanMetadataKind!
  values: SpanMetadataValues!
  updatedAt: Time!
}

type RunTraceSpanOutput {
  input: Bytes
  data: Bytes
  error: StepError
}

type StepError {
  message: String!
  name: String
  stack: String
  cause: Unknown
}

type RunTraceTrigger {
  eventName: String
  IDs: [ULID!]!
  payloads: [Bytes!]!
  timestamp: Time!
  isBatch: Boolean!
  batchID: ULID
  cron: String
}
"""


def _step_info_type(value: Any, *_: Any) -> str:
    return str(value["__typename"])


def build() -> GraphQLSchema:
    schema = build_schema(SDL)
    step_info = schema.get_type("StepInfo")
    step_info.resolve_type = _step_info_type  # type: ignore[union-attr]
    return schema
