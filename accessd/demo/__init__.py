"""`accessd demo`: sample data, a broker, simulated panels and virtual cards, and the API.

run           seeds the database and runs the broker, the simulators and the service
options       what a run is asked for (DemoOptions)
mosquitto     the project's Mosquitto config on a loopback port
embedded_broker  amqtt, where Mosquitto cannot be installed
"""
