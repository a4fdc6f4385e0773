"""The shared streaming runtime: everything about Kafka lives here, stages only bring handlers."""
