"""Pure domain logic of the engine: state machines and the credit policy. No I/O, no clock."""
