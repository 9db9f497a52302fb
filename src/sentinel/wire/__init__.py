"""Wire contract: message Structs, decoding, validation and dead letters."""
