"""Request-independent building blocks: errors, clock, ids, tokens, the state store and async operations."""
