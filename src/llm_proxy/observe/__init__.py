"""What the proxy tells its operators: metrics, and the redaction every emitted text goes through."""
