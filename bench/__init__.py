"""llm-proxy's benchmark suite: the proxy side by side with the direct upstream, nginx and LiteLLM.

``python -m bench [--quick] [--out docs/benchmarks.md]`` starts the mock upstream, each contender in
turn, drives load with wrk (plain requests) and an asyncio client (streams), and writes a Markdown
report with PNG charts. Every process it starts is stopped by its PID before it returns.
"""
