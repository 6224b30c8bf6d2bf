//! osprey-lab: the performance lab (`osprey load`, `osprey analyze`); being written.
