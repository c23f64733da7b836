//! Helpers shared by the end-to-end tests: starting the real server binary and talking to it.
