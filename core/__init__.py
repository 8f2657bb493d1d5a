"""The ground floor: settings, logging, topic names, Kafka clients and the event contract; imports nothing of ours."""
