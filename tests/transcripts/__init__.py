"""Transcript tests: each dialect's codecs against recorded wire data, not against the project's own encoders.

The files under ``tests/transcripts/<dialect>/`` are copies, as data, of the wire formats documented for each
API (``shared/reference/dialects.md`` and the vendors' API references it summarises): raw SSE streams, JSON
response bodies, HTTP error bodies, and for Bedrock the inner Messages events of an event stream. The tests
decode them and assert the exact canonical result, and encode canonical events and check the output against
the documented event order and required fields. Nothing here is produced by the codec under test, so an
encoder and a decoder that share a mistake cannot hide it from these tests.
"""
