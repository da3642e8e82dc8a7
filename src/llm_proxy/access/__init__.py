"""Who may use the proxy: client keys, what each may use, and its request and token limits."""
