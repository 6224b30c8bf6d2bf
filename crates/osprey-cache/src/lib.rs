//! osprey-cache (being built).
