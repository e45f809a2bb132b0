"""The SimPy shell: simulated clock, network, agents and coordinators around the policies."""
