// Must compile: the control for the two fence tests - each side of the fence
// is fine on its own (this file includes the PostgreSQL side; the unit tests
// compile the pure side).
#include "pg/postgres.hpp"
