"""The MNIST-1D example: a 1-D CNN search space whose architectures really differ."""
