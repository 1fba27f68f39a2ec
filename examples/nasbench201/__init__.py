"""NAS-Bench-201 on the replay executor: real CIFAR-10 curves of 200 architectures."""
