"""The digits example: a real PyTorch trainer, a MnasNet-style search space and proxy tasks."""
