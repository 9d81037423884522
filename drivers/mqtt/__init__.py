"""The MQTT panel protocol (topics, versioned JSON payloads, broker ACL names) and the client
in layers: connection (paho on the loop) → session (reconnects, keeps subscriptions) → link
(the seam, with request/reply on the shared matcher); `memory` is an in-memory broker."""
