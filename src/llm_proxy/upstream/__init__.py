"""Toward upstreams: the HTTP client, credentials applied per route inside it, and the embedded mock transport."""
