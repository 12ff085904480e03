// Must not compile: PostgreSQL's headers first, then a pure C++ header of
// src/core (pure.hpp refuses, having seen postgres.h).
#include "pg/postgres.hpp"
#include "core/pure.hpp"
