"""What the proxy keeps between requests, in one state store.

Session progress, remembered thinking and stored conversations (``previous_response_id``).
"""
