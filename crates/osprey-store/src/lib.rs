//! osprey-store (being built).
