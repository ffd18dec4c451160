"""Inngest's wire protocol: sync payloads, call requests and responses, opcodes and signatures.

Pure data and functions, no web framework: shared by the HTTP driver (`core/drivers/http.py`)
and the server.
"""
