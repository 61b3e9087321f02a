"""devnet throughput benchmark."""
