// postgres.hpp: the one way PostgreSQL-side files include postgres.h.
//
// PostgreSQL's headers are C; they come in through extern "C" here, after a
// check that no pure C++ header of src/core came first in this translation
// unit without going through its own guard.
#pragma once

#ifdef FOREMAN_PURE_CXX
#error "this translation unit is pure C++ and may not include PostgreSQL headers"
#endif

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

// The wrappers over differences between PostgreSQL majors, and the headers
// that moved between them (16's varatt.h): in every PostgreSQL-side file.
#include "pg/compat.hpp"
