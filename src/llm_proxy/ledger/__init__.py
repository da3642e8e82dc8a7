"""The usage ledger: one priced record per request, written off the request path, read by the CLI, API and dashboard."""
