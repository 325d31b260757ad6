// No per-level FMA loops in this build (no kernel library): support/peak.hpp dispatches its own FmaLoop.
