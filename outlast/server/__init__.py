"""The HTTP side of Outlast (Starlette), one app on one port (`app.create_app`): Inngest's event
API (`events`), sync (`sync`), REST and GraphQL APIs (`inngest_api`, `inngest_gql`) for apps on
the official SDKs; our JSON API (`api`) and the dashboard (`dashboard`); health and metrics.

Handlers are module-level functions in module-level route tables; what they share is built once
per app (`services`). Request bodies are read by one reader with its limit (`body`); actions are
written once (`actions`, `sync`) for the dashboard and the JSON API alike.
"""
