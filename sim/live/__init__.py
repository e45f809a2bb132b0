"""The live shell: the policies of sim.policies driving real agent processes over NATS JetStream."""
