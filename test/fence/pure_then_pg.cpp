// Must not compile: a pure C++ file of src/core that then includes
// PostgreSQL's headers (postgres.hpp refuses, having seen pure.hpp).
#include "core/pure.hpp"
#include "pg/postgres.hpp"
