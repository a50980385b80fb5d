"""Model API access for the LLM pipeline stages: config, key, client, cache, limits, cost."""
