"""Byte framings of streams and carried state: SSE, AWS event-stream, the reasoning carry envelope. No I/O."""
