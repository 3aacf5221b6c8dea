"""Metering: the meter contract, counter and sampled window engines, energy integration, periodic
sampling, the resource-sampler contract and shared NVIDIA GPU access."""
