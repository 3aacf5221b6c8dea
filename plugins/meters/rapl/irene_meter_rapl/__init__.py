"""IrEne meter plugin: Intel/AMD RAPL through Linux powercap."""
