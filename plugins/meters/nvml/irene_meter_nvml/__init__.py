"""IrEne meter plugin: NVIDIA GPU energy through NVML."""
