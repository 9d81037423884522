"""The MQTT panel protocol: topics, versioned JSON payloads, and the paho client wrapper."""
