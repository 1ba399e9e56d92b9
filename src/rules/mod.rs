//! Detection rules: Falco-compatible loader, condition compiler and matcher (pure, no I/O besides loading files).
