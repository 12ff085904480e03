// pure.hpp: included first by every file of src/core.
//
// src/core is pure C++20: std containers, exceptions and fmt, never postgres.h.
// It reaches PostgreSQL only through src/pg. This header refuses to be compiled
// together with postgres.h, in either order (src/pg/postgres.hpp checks the
// other direction).
#pragma once

#if defined(PG_MAJORVERSION) || defined(POSTGRES_H)  // pg_config.h or postgres.h came first
#error "src/core is pure C++: postgres.h must not be included in this translation unit"
#endif

#define FOREMAN_PURE_CXX 1
