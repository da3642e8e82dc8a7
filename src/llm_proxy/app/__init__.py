"""The async shell: command line, server, the ASGI application and its request/response exchange."""
