"""The HTTP side of Outlast (Starlette): for now, the event API used by `outlast start`."""
