"""Major-hazard register and its state machine."""
