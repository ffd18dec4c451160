"""Drivers: how an attempt reaches the user's code (in-process, or an Inngest SDK app over HTTP)."""
