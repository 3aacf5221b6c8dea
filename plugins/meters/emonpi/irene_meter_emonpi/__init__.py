"""IrEne meter plugin: emonPi energy monitor over a serial port."""
