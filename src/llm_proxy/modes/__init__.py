"""The two ways a request crosses the proxy: proxy mode (same API, model and key rewritten) and translation mode."""
