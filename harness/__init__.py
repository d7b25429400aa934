"""What the tests, the demo and the benchmark share: real servers on loopback, Home Assistant
driven in process or as a process, and the helpers that watch a tunnel."""
