"""End-to-end tests with the real CLI clients (Claude Code, Codex) inside a network namespace."""
